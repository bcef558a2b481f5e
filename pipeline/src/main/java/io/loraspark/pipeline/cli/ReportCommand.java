package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.pipeline.report.RunReport;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code report --run DIR}: writes {@code report.html} and {@code report.md} for a finished sweep
 * run directory (see {@link RunReport}) and prints {@code {"html", "markdown"}} as one JSON line.
 * Needs no Spark: it reads the run's CSV and JSON files only.
 */
@Command(
    name = "report",
    mixinStandardHelpOptions = true,
    description =
        "Writes report.html (self-contained) and report.md for the sweep run directory DIR;"
            + " prints {\"html\", \"markdown\"} as one JSON line.")
final class ReportCommand implements Callable<Integer> {
  @Option(
      names = "--run",
      required = true,
      paramLabel = "DIR",
      description = "run directory written by train (leaderboard.csv, metrics.csv, run.json)")
  Path run;

  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() {
    Path html = RunReport.write(run).toAbsolutePath().normalize();
    ObjectNode json = ScoreInput.STRICT.createObjectNode();
    json.put("html", html.toString());
    json.put("markdown", html.resolveSibling(RunReport.MARKDOWN).toString());
    spec.commandLine().getOut().println(json);
    return Main.OK;
  }
}
