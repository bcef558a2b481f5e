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
    Output r = execute(args);
    assertThat(r.exitCode()).as("%s: %s", String.join(" ", args), r.err()).isZero();
    return r.out();
  }

  /** What one run returned and printed. */
  public record Output(int exitCode, String out, String err) {}

  /** Runs {@code args} through {@link Main#execute}, whatever its exit code. */
  public static Output execute(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        Main.execute(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Output(
        code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }
}
