package io.loraspark.pipeline.progress;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ProgressBarTest {

  @Test
  void aKnownTotalDrawsTheBarPercentAndAnEtaFromTheRateSoFar() {
    String line = ProgressBar.render("round 1/3", new ProgressBar.Status(0.25, "steps 40/160"), 30);
    // 25% in 30 s → 90 s left
    assertThat(line)
        .isEqualTo("round 1/3 [#####---------------]  25% · steps 40/160 · 0:30 · ETA 1:30");
  }

  @Test
  void anUnknownTotalShowsCountersAndElapsedTimeOnly() {
    String line =
        ProgressBar.render("preprocess", new ProgressBar.Status(Double.NaN, "tasks 3/8"), 4000);
    assertThat(line).isEqualTo("preprocess · tasks 3/8 · 1:06:40");
  }

  @Test
  void doneHasNoEtaAndFractionsAreClamped() {
    assertThat(ProgressBar.render("r", new ProgressBar.Status(1.2, ""), 5))
        .isEqualTo("r [####################] 100% · 0:05");
  }

  @Test
  void closePrintsTheFinalStateOnceOnItsOwnLine() {
    StringWriter sink = new StringWriter();
    AtomicLong now = new AtomicLong(0);
    AtomicLong steps = new AtomicLong(0);
    ProgressBar bar =
        new ProgressBar(
            new PrintWriter(sink),
            "round 1/1",
            () -> new ProgressBar.Status(steps.get() / 10.0, "steps " + steps.get() + "/10"),
            false,
            60_000,
            now::get);
    steps.set(10);
    now.set(12_000_000_000L);
    bar.close();
    assertThat(sink.toString())
        .isEqualTo("round 1/1 [####################] 100% · steps 10/10 · 0:12\n");
  }

  @Test
  void quietDrawsNothing() {
    try (ProgressBar bar =
        ProgressBar.Factory.NONE.start("x", () -> new ProgressBar.Status(0.5, "y"))) {
      assertThat(bar).isNotNull();
    }
  }
}
