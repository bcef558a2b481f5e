package io.loraspark.train.loop;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.factory.Nd4j;

/** The warm-up must not disturb what a run depends on: ND4J's global random stream. */
class KernelWarmupTest {

  @Test
  void warmupTrainsWithoutTouchingNd4jsRandomStream() {
    Nd4j.getRandom().setSeed(42);
    long[] expected = {Nd4j.getRandom().nextLong(), Nd4j.getRandom().nextLong()};
    Nd4j.getRandom().setSeed(42);
    double ms = KernelWarmup.run(2);
    assertThat(ms).isPositive();
    assertThat(new long[] {Nd4j.getRandom().nextLong(), Nd4j.getRandom().nextLong()})
        .as("the random stream after a warm-up")
        .containsExactly(expected);
  }
}
