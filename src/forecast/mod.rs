//! Auto-ARIMA forecasting (work in progress).

mod arima;
mod kalman;
mod optim;
mod poly;
#[cfg(test)]
mod testdata;
