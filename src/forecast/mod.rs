//! Auto-ARIMA forecasting (work in progress).

mod arima;
mod auto;
mod kalman;
mod normal;
mod optim;
mod poly;
mod stl;
#[cfg(test)]
mod testdata;
