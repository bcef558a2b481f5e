package io.loraspark.train.loop;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The one outcome record: what the trainer fills in, and what saving adds. */
class AdapterOutcomeTest {
  private static final AdapterSpec SPEC = FusedTrainerTest.spec("a", 2, 1.0, 0.0, 3, 1);

  private static StepMetrics step(int step, double loss, double tps) {
    return new StepMetrics("a", step, loss, Double.NaN, 1e-3, 0.5, 100, tps);
  }

  @Test
  void theTrainersOutcomeTakesTheLastLossAndTheMeanThroughput() {
    List<StepMetrics> metrics = List.of(step(1, 5.0, 900), step(2, 4.5, 1000), step(3, 4.0, 1400));
    AdapterOutcome o = AdapterOutcome.trained(SPEC, "", 3, 3.9, 5.2, 64, metrics);
    assertThat(o.adapterId()).isEqualTo("a");
    assertThat(o.status()).isEqualTo(AdapterStatus.OK);
    assertThat(o.trainLoss()).as("the last step's").isEqualTo(4.0);
    assertThat(o.tokensPerSecond()).as("(900 + 1000 + 1400) / 3").isEqualTo(1100.0);
    assertThat(o.adapterDir()).as("not saved yet").isNull();
    assertThat(o.wallSeconds()).isNaN();

    AdapterOutcome failed =
        AdapterOutcome.trained(SPEC, "step 1: non-finite loss", 0, 1, 2, 64, List.of());
    assertThat(failed.status()).isEqualTo(AdapterStatus.FAILED);
    assertThat(failed.trainLoss()).as("no step").isNaN();
    assertThat(failed.tokensPerSecond()).isZero();
  }

  @Test
  void savingAddsOnlyWhereByWhichAttemptAndHowLong() {
    AdapterOutcome o =
        AdapterOutcome.trained(SPEC, "", 1, 3.9, 5.2, 64, List.of(step(1, 5.0, 900)));
    AdapterOutcome saved = o.savedTo("/runs/x/adapters/a", 2, 3.5);
    assertThat(saved)
        .isEqualTo(
            new AdapterOutcome(
                "a",
                AdapterStatus.OK,
                "",
                1,
                5.0,
                3.9,
                5.2,
                900.0,
                64,
                o.metrics(),
                "/runs/x/adapters/a",
                2,
                3.5));
  }
}
