package io.loraspark.e2e;

import io.loraspark.pipeline.testing.InProcessCli;

/** Runs the CLI in-process with captured streams. */
record CliRunner(int exitCode, String out, String err) {

  static CliRunner run(String... args) {
    InProcessCli.Output r = InProcessCli.execute(args);
    return new CliRunner(r.exitCode(), r.out(), r.err());
  }

  /** Non-empty lines of stderr. */
  java.util.List<String> errLines() {
    return err.lines().filter(l -> !l.isBlank()).toList();
  }
}
