package io.loraspark.pipeline.cli;

import java.io.FileNotFoundException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Entry point of {@code bin/lora-pipeline} and of {@code spark-submit --class
 * io.loraspark.pipeline.cli.Main}.
 *
 * <p>Exit codes (DESIGN.md): 0 on success; 2 for a usage error or invalid input, with exactly one
 * line on stderr naming the file, key, row or tensor and what would be valid; 1 for any other
 * failure, also as one line (set {@code LORA_SPARK_DEBUG=1} for the stack trace). Results go to
 * stdout, progress and errors to stderr.
 */
@Command(
    name = "lora-pipeline",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = "Fine-tune causal LMs with LoRA-family adapters on Apache Spark.",
    subcommands = {
      ScoreCommand.class,
      GenerateCommand.class,
      ServeCommand.class,
      PreprocessCommand.class,
      TrainCommand.class,
      MergeCommand.class,
      ComposeCommand.class,
      ExportCommand.class,
      RunCommand.class,
      ReportCommand.class,
      BenchCommand.class,
      CommandLine.HelpCommand.class
    })
public final class Main implements Runnable {
  /** Exit code for success. */
  public static final int OK = 0;

  /** Exit code for a failure that is not the input's fault. */
  public static final int FAILURE = 1;

  /** Exit code for a usage error or invalid input. */
  public static final int INVALID_INPUT = 2;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(), "a command is required");
  }

  public static void main(String[] args) {
    System.exit(execute(args, System.out, System.err));
  }

  /** Runs the CLI with the given streams and returns the exit code (never calls System.exit). */
  public static int execute(String[] args, PrintStream out, PrintStream err) {
    PrintWriter errWriter = new PrintWriter(err, true, StandardCharsets.UTF_8);
    CommandLine cli = new CommandLine(new Main());
    cli.setOut(new PrintWriter(out, true, StandardCharsets.UTF_8));
    cli.setErr(errWriter);
    cli.setParameterExceptionHandler(
        (ex, a) -> {
          errWriter.println("error: " + oneLine(ex.getMessage()) + " (see --help)");
          return INVALID_INPUT;
        });
    cli.setExecutionExceptionHandler(
        (ex, commandLine, parseResult) -> {
          int code = exitCodeOf(ex);
          errWriter.println("error: " + describe(ex));
          if (System.getenv("LORA_SPARK_DEBUG") != null) {
            ex.printStackTrace(errWriter);
          }
          return code;
        });
    return cli.execute(args);
  }

  /** 2 for input errors (bad values, malformed or missing files), 1 for everything else. */
  static int exitCodeOf(Throwable ex) {
    for (Throwable t = ex; t != null; t = t.getCause()) {
      if (t instanceof IllegalArgumentException
          || t instanceof NoSuchFileException
          || t instanceof FileNotFoundException) {
        return INVALID_INPUT;
      }
      if (!(t instanceof UncheckedIOException) && t != ex) {
        break;
      }
    }
    return FAILURE;
  }

  private static String describe(Throwable ex) {
    if (ex instanceof IllegalArgumentException) {
      return oneLine(ex.getMessage());
    }
    Throwable root =
        ex instanceof UncheckedIOException && ex.getCause() != null ? ex.getCause() : ex;
    if (root instanceof NoSuchFileException) {
      return "no such file: " + root.getMessage();
    }
    return root.getClass().getSimpleName()
        + ": "
        + oneLine(withoutStackTrace(String.valueOf(root.getMessage())));
  }

  /**
   * A message up to the stack trace Spark appends to a failed task's reason ({@code \n\tat ...}),
   * so a job that failed on an executor reports the task's exception and not a page of frames.
   */
  static String withoutStackTrace(String s) {
    int at = s.indexOf("\n\tat ");
    return at < 0 ? s : s.substring(0, at);
  }

  static String oneLine(String s) {
    return s == null ? "" : s.replaceAll("\\s*\\R\\s*", " ").trim();
  }

  /** Prints the project version from the jar manifest. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = Main.class.getPackage().getImplementationVersion();
      return new String[] {"lora-pipeline " + (v == null ? "dev" : v)};
    }
  }
}
