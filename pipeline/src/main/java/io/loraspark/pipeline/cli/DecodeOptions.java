package io.loraspark.pipeline.cli;

import io.loraspark.train.model.Kernels;
import io.loraspark.train.model.precision.Precision;
import picocli.CommandLine.Option;

/** The options of the commands that decode ({@code generate}, {@code serve}). */
final class DecodeOptions {
  @Option(
      names = "--precision",
      defaultValue = "fp32",
      description =
          "the decode kernels' weights: fp32, or bf16 (each projection weight rounded to"
              + " bfloat16, half the bytes per token, arithmetic in fp32); auto is fp32"
              + " (default: ${DEFAULT-VALUE})")
  String precision;

  @Option(
      names = "--threads",
      description =
          "threads of the decode kernels (default: the machine's cores); any count gives the"
              + " same tokens")
  Integer threads;

  /** The parsed precision; an unknown name is a usage error naming the valid ones. */
  Precision precision() {
    return Precision.parse(precision);
  }

  /** Sets the decode kernels' thread count for this JVM. */
  void applyThreads() {
    int n = threads == null ? Runtime.getRuntime().availableProcessors() : threads;
    if (n < 1) {
      throw new IllegalArgumentException("--threads must be >= 1 but was " + n);
    }
    Kernels.threads(n);
  }
}
