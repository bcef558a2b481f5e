package io.loraspark.pipeline.progress;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * A progress bar for one stage, redrawn in place on a terminal or printed as a plain line every few
 * seconds otherwise (logs, schedulers), and closed with a final line:
 *
 * <pre>
 * round 1/3 [##########----------]  50% · tasks 1/2 · adapters 2/4 · steps 80/160 · 2,140 tok/s · ETA 0:41
 * </pre>
 *
 * <p>The stage's numbers come from a {@link Status} supplier polled on a daemon thread; the bar
 * computes the ETA from the fraction done and the elapsed time, so it is only shown where the total
 * is known.
 */
public final class ProgressBar implements AutoCloseable {

  /**
   * What a stage has done so far.
   *
   * @param fraction done in [0, 1], or NaN when the total is not known (no bar, no ETA)
   * @param counters the stage's own counters, e.g. {@code tasks 1/2 · steps 80/160}
   */
  public record Status(double fraction, String counters) {}

  /** Starts bars for stages; {@link #NONE} draws nothing (quiet mode). */
  public interface Factory {
    Factory NONE = (label, status) -> new ProgressBar(null, label, status, false, 0, null);

    ProgressBar start(String label, Supplier<Status> status);
  }

  private static final int WIDTH = 20;

  /**
   * Bars on {@code err}: redrawn every second on a terminal, else a line every {@code every}.
   *
   * @param interactive whether {@code err} is a terminal ({@link #isTerminal()})
   */
  public static Factory to(PrintWriter err, boolean interactive, Duration every) {
    return (label, status) ->
        new ProgressBar(
            err,
            label,
            status,
            interactive,
            interactive ? 1000 : Math.max(200, every.toMillis()),
            System::nanoTime);
  }

  /**
   * Bars on the command's stderr as the CLI draws them: none when {@code quiet}, else redrawn on a
   * terminal or a line every {@link #lineInterval()}.
   */
  public static Factory forStderr(PrintWriter err, boolean quiet) {
    return quiet ? Factory.NONE : to(err, isTerminal(), lineInterval());
  }

  /**
   * Whether stderr is a terminal a bar can be redrawn on: a console is attached and TERM is not
   * {@code dumb}.
   */
  public static boolean isTerminal() {
    String term = System.getenv("TERM");
    return System.console() != null && term != null && !term.equals("dumb");
  }

  /**
   * The interval of plain progress lines when stderr is not a terminal: {@code
   * LORA_SPARK_PROGRESS_SECONDS} (default 30).
   */
  public static Duration lineInterval() {
    String s = System.getenv("LORA_SPARK_PROGRESS_SECONDS");
    if (s == null) {
      s = System.getProperty("lora.progress.seconds", "30");
    }
    try {
      return Duration.ofMillis((long) (Double.parseDouble(s) * 1000));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "LORA_SPARK_PROGRESS_SECONDS must be a number of seconds but was '" + s + "'");
    }
  }

  private final PrintWriter err;
  private final String label;
  private final Supplier<Status> status;
  private final boolean interactive;
  private final LongSupplier clock;
  private final long start;
  private final ScheduledExecutorService timer;
  private String last = "";
  private boolean closed;

  ProgressBar(
      PrintWriter err,
      String label,
      Supplier<Status> status,
      boolean interactive,
      long periodMillis,
      LongSupplier clock) {
    this.err = err;
    this.label = label;
    this.status = status;
    this.interactive = interactive;
    this.clock = clock;
    this.start = clock == null ? 0 : clock.getAsLong();
    if (err == null) {
      timer = null;
      return;
    }
    timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "lora-progress");
              t.setDaemon(true);
              return t;
            });
    timer.scheduleAtFixedRate(this::draw, periodMillis, periodMillis, TimeUnit.MILLISECONDS);
  }

  /** Draws the final state on its own line and stops redrawing. */
  @Override
  public void close() {
    if (timer == null) {
      return;
    }
    timer.shutdownNow();
    synchronized (this) {
      closed = true;
      String line = render(label, safeStatus(), seconds());
      err.print(interactive ? "\r" + line + "\033[K\n" : line + "\n");
      err.flush();
    }
  }

  private synchronized void draw() {
    if (closed) {
      return;
    }
    String line = render(label, safeStatus(), seconds());
    if (interactive) {
      err.print("\r" + line + "\033[K");
    } else if (!line.equals(last)) {
      err.println(line);
    }
    err.flush();
    last = line;
  }

  private Status safeStatus() {
    try {
      return status.get();
    } catch (RuntimeException e) {
      return new Status(Double.NaN, "progress unavailable: " + e.getMessage());
    }
  }

  private double seconds() {
    return (clock.getAsLong() - start) / 1e9;
  }

  /** One progress line: label, bar and percentage (when the total is known), counters, ETA. */
  static String render(String label, Status s, double elapsedSeconds) {
    StringBuilder b = new StringBuilder(label);
    double f = s.fraction();
    if (!Double.isNaN(f)) {
      f = Math.max(0, Math.min(1, f));
      int filled = (int) Math.round(f * WIDTH);
      b.append(" [")
          .append("#".repeat(filled))
          .append("-".repeat(WIDTH - filled))
          .append(String.format(Locale.ROOT, "] %3.0f%%", f * 100));
    }
    if (!s.counters().isEmpty()) {
      b.append(" · ").append(s.counters());
    }
    b.append(" · ").append(clock(elapsedSeconds));
    if (!Double.isNaN(f) && f > 0 && f < 1) {
      b.append(" · ETA ").append(clock(elapsedSeconds * (1 - f) / f));
    }
    return b.toString();
  }

  /** {@code m:ss}, or {@code h:mm:ss} from an hour on. */
  static String clock(double seconds) {
    long s = Math.round(seconds);
    return s >= 3600
        ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
        : String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
  }
}
