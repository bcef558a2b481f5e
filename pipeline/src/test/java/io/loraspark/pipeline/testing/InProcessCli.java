package io.loraspark.pipeline.testing;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.pipeline.cli.Main;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** The {@code lora-spark} CLI run in this JVM with its output captured. */
public final class InProcessCli {
  private InProcessCli() {}

  /**
   * Runs {@code args} through {@link Main#execute} and asserts exit code 0 (its stderr in the
   * failure message).
   *
   * @return what it printed to stdout
   */
  public static String run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        Main.execute(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(code)
        .as("%s: %s", String.join(" ", args), err.toString(StandardCharsets.UTF_8))
        .isZero();
    return out.toString(StandardCharsets.UTF_8);
  }
}
