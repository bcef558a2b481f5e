package io.loraspark.pipeline.sweep;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class SuccessiveHalvingTest {
  private static SweepConfig.Pruning halving(int eta, int minSteps) {
    return new SweepConfig.Pruning("successive_halving", eta, minSteps);
  }

  @Test
  void rungsGrowByEtaFromMinStepsAndEndAtTheLongestAdapter() {
    assertThat(SuccessiveHalving.rungs(halving(2, 10), 40)).containsExactly(10, 20, 40);
    assertThat(SuccessiveHalving.rungs(halving(3, 25), 200)).containsExactly(25, 75, 200);
    assertThat(SuccessiveHalving.rungs(halving(3, 0), 200))
        .as("min_steps 0: max / eta² = 22")
        .containsExactly(22, 66, 198, 200);
    assertThat(SuccessiveHalving.rungs(halving(4, 0), 3)).as("at least 1").containsExactly(1, 3);
    assertThat(SuccessiveHalving.rungs(SweepConfig.Pruning.NONE, 40)).containsExactly(40);
  }

  @Test
  void cutKeepsTheBestCeilingOfOneEtaAndAtLeastOne() {
    List<String> ranked = List.of("a", "b", "c", "d", "e");
    assertThat(SuccessiveHalving.cut(ranked, 2, false).kept()).containsExactly("a", "b", "c");
    assertThat(SuccessiveHalving.cut(ranked, 2, false).dropped()).containsExactly("d", "e");
    assertThat(SuccessiveHalving.cut(ranked, 3, false).kept()).containsExactly("a", "b");
    assertThat(SuccessiveHalving.cut(ranked, 9, false).kept()).containsExactly("a");
    assertThat(SuccessiveHalving.cut(List.of("a"), 3, false).kept()).containsExactly("a");
    assertThat(SuccessiveHalving.cut(List.<String>of(), 3, false).kept()).isEmpty();
  }

  @Test
  void nothingIsDroppedAfterTheLastRung() {
    var cut = SuccessiveHalving.cut(List.of("a", "b", "c", "d"), 2, true);
    assertThat(cut.kept()).containsExactly("a", "b", "c", "d");
    assertThat(cut.dropped()).isEmpty();
  }
}
