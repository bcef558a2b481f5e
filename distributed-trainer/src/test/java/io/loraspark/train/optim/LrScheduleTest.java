package io.loraspark.train.optim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.loraspark.train.optim.LrSchedule.Kind;
import org.junit.jupiter.api.Test;

/**
 * Checks the schedules against Hugging Face's lr_lambda formulas worked out by hand, with peak 2,
 * 10 warmup steps and 110 total steps (so 100 decay steps).
 */
class LrScheduleTest {

  private static void check(LrSchedule s, int step, double want) {
    assertThat(s.lr(step)).as("%s lr(%d)", s, step).isCloseTo(want, within(1e-12));
  }

  @Test
  void constantWithWarmup() {
    LrSchedule s = LrSchedule.of(Kind.CONSTANT, 2.0, 10, 110);
    check(s, 0, 0.0); // warmup start: 0/10
    check(s, 5, 1.0); // 5/10 of peak
    check(s, 9, 1.8); // 9/10 of peak
    check(s, 10, 2.0); // warmup end
    check(s, 60, 2.0);
    check(s, 110, 2.0);
    check(new LrSchedule(Kind.CONSTANT, 2.0, 10, 110, 0.5), 60, 2.0); // floor is irrelevant
  }

  @Test
  void linearWithWarmup() {
    LrSchedule s = LrSchedule.of(Kind.LINEAR, 2.0, 10, 110);
    check(s, 0, 0.0);
    check(s, 5, 1.0);
    check(s, 10, 2.0); // (110 - 10) / 100 = 1
    check(s, 35, 1.5); // (110 - 35) / 100 = 0.75
    check(s, 60, 1.0); // (110 - 60) / 100 = 0.5
    check(s, 110, 0.0);
    LrSchedule floor = new LrSchedule(Kind.LINEAR, 2.0, 10, 110, 0.1);
    check(floor, 5, 1.0); // warmup is not lifted by the floor
    check(floor, 10, 2.0);
    check(floor, 60, 1.1); // 2 * (0.1 + 0.9 * 0.5)
    check(floor, 110, 0.2); // 2 * 0.1
  }

  @Test
  void cosineWithWarmup() {
    LrSchedule s = LrSchedule.of(Kind.COSINE, 2.0, 10, 110);
    check(s, 0, 0.0);
    check(s, 5, 1.0);
    check(s, 10, 2.0); // progress 0: 0.5 * (1 + cos 0) = 1
    check(s, 35, 1.0 + Math.sqrt(0.5)); // progress 1/4: 2 * 0.5 * (1 + sqrt(2)/2)
    check(s, 60, 1.0); // progress 1/2: 2 * 0.5 * (1 + cos(pi/2)) = 1
    check(s, 110, 0.0); // progress 1: 0.5 * (1 + cos pi) = 0
    LrSchedule floor = new LrSchedule(Kind.COSINE, 2.0, 10, 110, 0.1);
    check(floor, 60, 1.1); // 2 * (0.1 + 0.9 * 0.5)
    check(floor, 110, 0.2);
  }

  @Test
  void noWarmupStartsAtThePeakAndOneStepWarmupStartsAtZero() {
    for (Kind k : Kind.values()) {
      check(LrSchedule.of(k, 2.0, 0, 100), 0, 2.0);
      check(LrSchedule.of(k, 2.0, 1, 100), 0, 0.0);
      check(LrSchedule.of(k, 2.0, 1, 100), 1, 2.0);
    }
    check(LrSchedule.of(Kind.LINEAR, 2.0, 0, 100), 50, 1.0);
  }

  @Test
  void parsesKindNamesCaseInsensitively() {
    assertThat(Kind.parse("constant")).as("constant").isEqualTo(Kind.CONSTANT);
    assertThat(Kind.parse("Linear")).as("Linear").isEqualTo(Kind.LINEAR);
    assertThat(Kind.parse("COSINE")).as("COSINE").isEqualTo(Kind.COSINE);
    assertThatThrownBy(() -> Kind.parse("polynomial"))
        .as("unknown kind")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("lr scheduler must be one of [constant, linear, cosine] but was 'polynomial'");
    assertThatThrownBy(() -> Kind.parse(null))
        .as("null kind")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("[constant, linear, cosine]");
  }

  @Test
  void validatesParametersAndSteps() {
    assertThatThrownBy(() -> LrSchedule.of(Kind.LINEAR, 0, 0, 10))
        .as("zero lr")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("lr must be > 0 but was 0.0");
    assertThatThrownBy(() -> LrSchedule.of(Kind.LINEAR, 1, 0, 0))
        .as("zero total")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("total_steps must be > 0 but was 0");
    assertThatThrownBy(() -> LrSchedule.of(Kind.LINEAR, 1, 11, 10))
        .as("warmup past total")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("warmup_steps must be in [0, total_steps=10] but was 11");
    assertThatThrownBy(() -> new LrSchedule(Kind.COSINE, 1, 0, 10, 1.5))
        .as("floor above 1")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("min_lr_ratio must be in [0, 1] but was 1.5");
    LrSchedule s = LrSchedule.of(Kind.COSINE, 1, 0, 10);
    assertThatThrownBy(() -> s.lr(11))
        .as("step past total")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("lr schedule step must be in [0, total_steps=10] but was 11");
    assertThatThrownBy(() -> s.lr(-1))
        .as("negative step")
        .isInstanceOf(IllegalArgumentException.class);
  }
}
