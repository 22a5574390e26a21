# R's own auto.arima at the benchmark's rolling origins (the reference prae follows).
#
#     Rscript benches/reference/r_auto_arima.R
#
# Needs R with the forecast package (Debian: r-base-core r-cran-forecast). For every series in
# tests/fixtures/forecast/series/ and each of the 10 rolling origins of the MASE rule in
# benches/reference/README.md (t_k = n - 12 - 12 * (9 - k)), fits `auto.arima(y[1:t_k])` with
# every argument at its default (so R's approximation rule applies), forecasts 12 steps and
# writes one row per origin to tests/fixtures/forecast/r_auto_arima_origins.csv:
# name, origin, p, d, q, mean, drift (the model), aicc, mae, scale, mase (same scale rule:
# mean absolute one-step change over the training part). About 5 minutes on one core.
suppressMessages(library(forecast))

file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
here <- if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg))) else "."
fixtures <- file.path(here, "..", "..", "tests", "fixtures", "forecast")
files <- sort(list.files(file.path(fixtures, "series"), pattern = "\\.txt$", full.names = TRUE))
if (length(files) == 0) stop("no series in ", fixtures)

horizon <- 12
rows <- list()
for (f in files) {
  y <- scan(f, quiet = TRUE)
  n <- length(y)
  name <- sub("\\.txt$", "", basename(f))
  for (k in 0:9) {
    t <- n - horizon - 12 * (9 - k)
    train <- y[1:t]
    test <- y[(t + 1):(t + horizon)]
    scale <- mean(abs(diff(train)))
    fit <- auto.arima(train)
    mae <- mean(abs(forecast(fit, h = horizon)$mean - test))
    a <- fit$arma
    rows[[length(rows) + 1]] <- data.frame(
      name = name, origin = t, p = a[1], d = a[6], q = a[2],
      mean = "intercept" %in% names(fit$coef), drift = "drift" %in% names(fit$coef),
      aicc = fit$aicc, mae = mae, scale = scale, mase = mae / scale)
  }
  cat(name, "\n")
}
out <- do.call(rbind, rows)
write.csv(out, file.path(fixtures, "r_auto_arima_origins.csv"), row.names = FALSE)
cat(sprintf("R %s, forecast %s: %d series, median MASE %.4f\n",
            paste(R.version$major, R.version$minor, sep = "."), packageVersion("forecast"),
            length(files), median(tapply(out$mase, out$name, mean))))
