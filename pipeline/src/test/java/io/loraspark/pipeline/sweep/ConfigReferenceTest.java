package io.loraspark.pipeline.sweep;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.train.loop.AdapterKey;
import io.loraspark.train.lora.DeltaLoraParams;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The README's configuration reference is {@link ConfigKeys#markdown()} verbatim, and the adapter
 * defaults of the table it is generated from ({@link AdapterSettings}) are the ones planning uses.
 * Run with {@code -Dlora.updateReadme=true} to rewrite the README's block after changing a key.
 */
class ConfigReferenceTest {
  static final String BEGIN =
      "<!-- BEGIN config-reference: generated from ConfigKeys by ConfigReferenceTest -->";
  static final String END = "<!-- END config-reference -->";

  @Test
  void theReadmeShowsTheGeneratedReference() throws IOException {
    Path readme = projectRoot().resolve("README.md");
    String text = Files.readString(readme, StandardCharsets.UTF_8);
    int b = text.indexOf(BEGIN);
    int e = text.indexOf(END);
    assertThat(b).as("README.md has the config-reference markers").isGreaterThanOrEqualTo(0);
    assertThat(e).isGreaterThan(b);
    String generated = "\n\n" + ConfigKeys.markdown();
    String current = text.substring(b + BEGIN.length(), e);
    if (Boolean.getBoolean("lora.updateReadme") && !current.equals(generated)) {
      Files.writeString(
          readme,
          text.substring(0, b + BEGIN.length()) + generated + text.substring(e),
          StandardCharsets.UTF_8);
      current = generated;
    }
    assertThat(current)
        .as("README.md's config reference; rerun with -Dlora.updateReadme=true to regenerate")
        .isEqualTo(generated);
  }

  /** Planning an adapter with no settings gives every default of the table (walked). */
  @Test
  void theTablesAdapterDefaultsAreThePlannedOnes() {
    SweepPlan.Planned p = SweepPlan.resolve("a000", SettingValues.NONE);
    Map<String, String> planned =
        new java.util.HashMap<>(AdapterKey.settings(p.spec()).build().fields());
    planned.putAll( // λ and K are planned for delta-lora only
        AdapterKey.settings(
                SweepPlan.resolve(
                        "a001", SettingValues.NONE.with(AdapterSettings.METHOD, "delta-lora"))
                    .spec())
            .build()
            .fields()
            .entrySet()
            .stream()
            .filter(e -> e.getKey().startsWith("delta_"))
            .collect(java.util.stream.Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue)));
    for (AdapterSettings.Setting<?> s : AdapterSettings.ALL) {
      Object dflt = s.defaultValue();
      String v = s == AdapterSettings.REPLICAS ? "" + p.replicas() : planned.get(s.name());
      if (dflt != null) {
        Object value =
            dflt instanceof Double
                ? Double.valueOf(v)
                : dflt instanceof Integer
                    ? Integer.valueOf(v)
                    : dflt instanceof Long
                        ? Long.valueOf(v)
                        : dflt instanceof Boolean ? Boolean.valueOf(v) : v;
        assertThat(value).as("planned default of %s", s.name()).isEqualTo(dflt);
      }
    }
    assertThat(p.spec().lora().alpha()).as(AdapterSettings.ALPHA.derived()).isEqualTo(16.0);
    assertThat(p.spec().train().warmupSteps())
        .as(AdapterSettings.WARMUP_STEPS.derived())
        .isEqualTo(10);
    assertThat(ConfigKeys.names(ConfigKeys.ADAPTER)).isEqualTo(SweepConfig.ADAPTER_KEYS);
    assertThat(p.spec().lora().deltaLora()).as("only delta-lora has λ and K").isNull();
    DeltaLoraParams delta =
        SweepPlan.resolve("a000", SettingValues.NONE.with(AdapterSettings.METHOD, "delta-lora"))
            .spec()
            .lora()
            .deltaLora();
    assertThat(delta.updateRatio()).isEqualTo(AdapterSettings.DELTA_UPDATE_RATIO.defaultValue());
    assertThat(AdapterSettings.DELTA_START_STEP.derived()).isEqualTo("min(500, steps / 10)");
    assertThat(delta.startStep()).isEqualTo(Math.min(500, p.spec().train().steps() / 10));
    DeltaLoraParams set =
        SweepPlan.resolve(
                "a001",
                SettingValues.NONE
                    .with(AdapterSettings.METHOD, "delta-lora")
                    .with(AdapterSettings.DELTA_UPDATE_RATIO, 0.5)
                    .with(AdapterSettings.DELTA_START_STEP, 7L))
            .spec()
            .lora()
            .deltaLora();
    assertThat(set).isEqualTo(new DeltaLoraParams(0.5, 7, false));
  }

  @Test
  void theDocumentedPruningDefaultsAreTheParsedOnes() throws IOException {
    Path f = Files.createTempFile("sweep", ".yaml");
    try {
      Files.writeString(f, "model: m\ndata: d\npruning: {}\n");
      SweepConfig c = SweepConfig.read(f);
      assertThat(c.pruning().strategy())
          .isEqualTo(ConfigKeys.find(ConfigKeys.PRUNING, "strategy").defaultValue());
      assertThat(c.pruning().eta())
          .isEqualTo(Integer.parseInt(ConfigKeys.find(ConfigKeys.PRUNING, "eta").defaultValue()));
      assertThat(c.pruning().minSteps())
          .isEqualTo(
              Integer.parseInt(ConfigKeys.find(ConfigKeys.PRUNING, "min_steps").defaultValue()));
      assertThat(c.adaptersPerTask()).isEqualTo(ConfigKeys.DEFAULT_ADAPTERS_PER_TASK);
      assertThat(c.checkpointEvery()).isEqualTo(ConfigKeys.DEFAULT_CHECKPOINT_EVERY);
      assertThat(Arrays.asList(c.grid().size(), c.adapterSettings().size())).containsOnly(0);
    } finally {
      Files.deleteIfExists(f);
    }
  }

  private static Path projectRoot() {
    Path here = Path.of("").toAbsolutePath();
    return Files.exists(here.resolve("README.md")) && Files.exists(here.resolve("conf"))
        ? here
        : here.getParent();
  }
}
