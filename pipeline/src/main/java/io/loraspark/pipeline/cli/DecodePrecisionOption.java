package io.loraspark.pipeline.cli;

import io.loraspark.train.model.precision.Precision;
import picocli.CommandLine.Option;

/** {@code --precision} of the commands that decode ({@code generate}, {@code serve}). */
final class DecodePrecisionOption {
  @Option(
      names = "--precision",
      defaultValue = "fp32",
      description =
          "the decode kernels' weights: fp32, or bf16 (each projection weight rounded to"
              + " bfloat16, half the bytes per token, arithmetic in fp32); auto is fp32"
              + " (default: ${DEFAULT-VALUE})")
  String precision;

  /** The parsed value; an unknown name is a usage error naming the valid ones. */
  Precision get() {
    return Precision.parse(precision);
  }
}
