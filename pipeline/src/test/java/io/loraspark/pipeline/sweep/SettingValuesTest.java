package io.loraspark.pipeline.sweep;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The sweep YAML's adapter settings read once into typed, range-checked values. */
class SettingValuesTest {
  @TempDir Path dir;

  private Path write(String yaml) throws IOException {
    return Files.writeString(dir.resolve("s.yaml"), "model: m\ndata: d\n" + yaml);
  }

  @Test
  void eachValueIsReadIntoItsSettingsType() throws IOException {
    SettingValues d =
        SweepConfig.read(
                write(
                    "defaults: {rank: 4, lr: 2e-4, alpha: 16, rslora: true, seed: 7,"
                        + " targets: [q, v], method: dora}\n"))
            .defaults();
    assertThat(d.get(AdapterSettings.RANK)).isEqualTo(4);
    assertThat(d.get(AdapterSettings.LR)).isEqualTo(2e-4);
    assertThat(d.get(AdapterSettings.ALPHA)).as("an integer for a number").isEqualTo(16.0);
    assertThat(d.get(AdapterSettings.RSLORA)).isTrue();
    assertThat(d.get(AdapterSettings.SEED)).isEqualTo(7L);
    assertThat(d.get(AdapterSettings.TARGETS)).isEqualTo("q,v");
    assertThat(d.get(AdapterSettings.METHOD)).isEqualTo("dora");
    assertThat(d.has(AdapterSettings.STEPS)).isFalse();
    assertThat(d.orDefault(AdapterSettings.STEPS)).isEqualTo(AdapterSettings.STEPS.defaultValue());
    assertThat(d.values())
        .extracting(v -> v.setting().name())
        .as("the file's order")
        .containsExactly("rank", "lr", "alpha", "rslora", "seed", "targets", "method");
  }

  /** Ids, seeds and settings pinned to what the map-based planner gave for this file (efb4c86). */
  @Test
  void adapterIdsKeepEachValueAsWritten() throws IOException {
    Path f =
        write(
            """
            grid:
              lr: [2e-4, 1.0e-3]
              alpha: [100, 16.50]
              targets: [[q, v], k]
            adapters:
              - {rank: 2, lr_ratio: 1.5e+1, rslora: true}
              - {lr: "3e-4", seed: 5}
            """);
    List<SweepPlan.Planned> plan = SweepPlan.expand(SweepConfig.read(f));
    assertThat(plan)
        .extracting(p -> p.spec().train().seed())
        .containsExactly(
            803958421L,
            845607171L,
            319790930L,
            239788948L,
            608707570L,
            1015077638L,
            1161260381L,
            513683364L,
            188579285L,
            5L);
    assertThat(plan.get(8).settings())
        .hasToString(
            "{method=lora, lora_rank=2, alpha=4.0, lr=2.0E-4, lr_ratio=15.0,"
                + " targets=q,k,v,o,gate,up,down, steps=100, batch_size=8, seed=188579285,"
                + " replicas=1, depth=0}");
    assertThat(plan)
        .extracting(p -> p.spec().id())
        .containsExactly(
            "a000-lr0.0002-a100-tq_v",
            "a001-lr0.0002-a100-tk",
            "a002-lr0.0002-a16.5-tq_v",
            "a003-lr0.0002-a16.5-tk",
            "a004-lr0.001-a100-tq_v",
            "a005-lr0.001-a100-tk",
            "a006-lr0.001-a16.5-tq_v",
            "a007-lr0.001-a16.5-tk",
            "a008-r2-x15-rstrue",
            "a009-lr3e-4-seed5");
  }

  @Test
  void aValueOutsideItsRangeIsRefusedWhenTheFileIsReadNamingFileAndKey() throws IOException {
    String[][] cases = { // the YAML, the message after the file
      {"grid:\n  rank: [2, 0]\n", "grid: rank must be an integer in [1, 4096] but was 0"},
      {
        "adapters:\n  - {rank: 2}\n  - {lr_ratio: -1}\n",
        "adapters[1]: lr_ratio must be a finite number > 0 but was -1.0"
      },
      {"defaults:\n  steps: 2.5\n", "defaults: steps must be an integer but was 2.5"},
      {"defaults:\n  rslora: 1\n", "defaults: rslora must be true or false but was 1"}
    };
    for (String[] c : cases) {
      Path f = write(c[0]);
      assertThatThrownBy(() -> SweepConfig.read(f)).as(c[0]).hasMessage(f + ": " + c[1]);
    }
  }

  @Test
  void laidOverValuesReplaceAndKeepTheirFirstPosition() {
    SettingValues base =
        SettingValues.NONE.with(AdapterSettings.RANK, 4L).with(AdapterSettings.LR, 1e-3);
    SettingValues over =
        base.with(
            SettingValues.NONE.with(AdapterSettings.STEPS, 9L).with(AdapterSettings.RANK, 8L));
    assertThat(over.values()).extracting(v -> (Object) v.value()).containsExactly(8, 1e-3, 9);
    assertThat(base.get(AdapterSettings.RANK)).as("unchanged").isEqualTo(4);
    assertThat(List.copyOf(over.values()))
        .extracting(v -> v.setting().name())
        .containsExactly("rank", "lr", "steps");
  }
}
