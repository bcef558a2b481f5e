package io.loraspark.pipeline.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * Every command's {@code --help} renders cleanly: picocli formats descriptions with {@code
 * String.format}, so a bare {@code %} (as in "10% of steps") makes it print a warning on stderr and
 * show the raw text.
 */
class CliHelpTest {
  @Test
  void everyCommandsHelpRendersWithoutPicocliWarnings() {
    CommandLine root = new CommandLine(new Main());
    PrintStream saved = System.err;
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      root.getUsageMessage(CommandLine.Help.Ansi.OFF);
      for (Map.Entry<String, CommandLine> c : root.getSubcommands().entrySet()) {
        String help = c.getValue().getUsageMessage(CommandLine.Help.Ansi.OFF);
        assertThat(help).as(c.getKey()).contains("Usage: ").doesNotContain("%%");
      }
    } finally {
      System.setErr(saved);
    }
    assertThat(err.toString(StandardCharsets.UTF_8)).isEmpty();
    assertThat(root.getSubcommands()).containsKeys("run", "train", "serve", "bench");
  }
}
