package io.loraspark.pipeline.sweep;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.pipeline.testing.InProcessCli;
import io.loraspark.pipeline.testing.RandomAdapters;
import io.loraspark.train.lora.AdapterParent;
import io.loraspark.train.model.CheckpointLoader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code stages:} in the sweep YAML: each stage read as the top level with its keys laid over it,
 * stage n > 1 planned as the grid crossed with the previous stage's top-k parents, and every
 * malformed stage refused with one line naming the file and the key (exit 2 from the CLI).
 */
class StageConfigTest {
  @TempDir Path dir;

  static final Path STORIES = Path.of("../models/stories260K").toAbsolutePath().normalize();

  static final String TWO_STAGES =
      """
      model: models/stories260K
      data: top.jsonl
      defaults:
        lr: 1.0e-3
        steps: 8
        seed: 7
      grid:
        rank: [2, 4]
      pruning: {strategy: successive_halving, eta: 2, min_steps: 2}
      stages:
        - name: general
        - name: domain
          data: domain.jsonl
          parents: {top_k: 2}
          defaults: {steps: 4}
          grid:
            lr_ratio: [1, 8, 16]
          pruning: none
      """;

  @Test
  void eachStageIsTheTopLevelWithItsOwnKeysLaidOver() throws IOException {
    SweepConfig c = SweepConfig.read(write(TWO_STAGES));
    assertThat(c.stages()).extracting(Stage::name).containsExactly("general", "domain");
    Stage general = c.stages().get(0);
    Stage domain = c.stages().get(1);
    assertThat(general.topK()).isEqualTo(1);
    assertThat(general.sweep().data()).isEqualTo("top.jsonl");
    assertThat(general.sweep().grid()).extracting(a -> a.setting().name()).containsExactly("rank");
    assertThat(general.sweep().pruning().enabled()).isTrue();
    assertThat(general.sweep().stages()).isEmpty();
    assertThat(domain.topK()).isEqualTo(2);
    assertThat(domain.sweep().data()).isEqualTo("domain.jsonl");
    assertThat(domain.sweep().grid()) // replaced, not merged
        .extracting(a -> a.setting().name())
        .containsExactly("lr_ratio");
    SettingValues merged = domain.sweep().defaults(); // merged key by key
    assertThat(merged.get(AdapterSettings.LR)).isEqualTo(1.0e-3);
    assertThat(merged.get(AdapterSettings.STEPS)).isEqualTo(4);
    assertThat(merged.get(AdapterSettings.SEED)).isEqualTo(7L);
    assertThat(domain.sweep().pruning().enabled()).isFalse();
    assertThat(StagedSweep.validate(c)).isEqualTo(2 + 3 * 2);
  }

  @Test
  void aSweepWithoutStagesPlansExactlyAsBefore() throws IOException {
    SweepConfig c = SweepConfig.read(write(TWO_STAGES.substring(0, TWO_STAGES.indexOf("stages:"))));
    assertThat(c.stages()).isEmpty();
    List<SweepPlan.Planned> plan = SweepPlan.expand(c);
    assertThat(plan).extracting(p -> p.spec().id()).containsExactly("a000-r2", "a001-r4");
    assertThat(plan)
        .extracting(p -> p.spec().train().seed())
        .containsExactly(SweepPlan.derivedSeed(7, 0), SweepPlan.derivedSeed(7, 1));
    assertThat(plan).allSatisfy(p -> assertThat(p.spec().parent()).isNull());
    assertThat(plan).allSatisfy(p -> assertThat(p.settings()).containsEntry("depth", 0));
  }

  /** Stage 2 under two real parent adapters: the grid once per parent, parent-major. */
  @Test
  void aLaterStageCrossesItsGridWithTheParents() throws IOException {
    var base = CheckpointLoader.load(STORIES);
    Path p1 = RandomAdapters.save(base, dir.resolve("p1"), 1, 0.02);
    Path p2 = RandomAdapters.save(base, dir.resolve("p2"), 2, 0.02);
    Stage domain = SweepConfig.read(write(TWO_STAGES)).stages().get(1);
    List<SweepPlan.Parent> parents =
        List.of(
            new SweepPlan.Parent("general-a001-r4", p1.toString(), 0),
            new SweepPlan.Parent("general-a000-r2", p2.toString(), 0));
    List<SweepPlan.Planned> plan = SweepPlan.expand(domain.sweep(), "domain-", parents);
    assertThat(plan)
        .extracting(p -> p.spec().id())
        .containsExactly(
            "domain-a000-x1-p1",
            "domain-a001-x8-p1",
            "domain-a002-x16-p1",
            "domain-a003-x1-p2",
            "domain-a004-x8-p2",
            "domain-a005-x16-p2");
    for (int i = 0; i < plan.size(); i++) {
      SweepPlan.Planned p = plan.get(i);
      SweepPlan.Parent parent = parents.get(i / 3);
      assertThat(p.settings())
          .as(p.spec().id())
          .containsEntry("parent", parent.id())
          .containsEntry("depth", 1)
          .containsEntry("steps", 4);
      assertThat(p.spec().parent())
          .as("%s trains on %s with its content hash", p.spec().id(), parent.dir())
          .isEqualTo(new AdapterParent(parent.dir(), AdapterParent.contentHash(parent.dir())));
    }
    assertThat(plan.stream().map(p -> p.spec().train().seed()).distinct()).hasSize(6);
  }

  @Test
  void malformedStagesAreOneLineNamingTheKey() throws IOException {
    String[][] cases = {
      {"    parents: {top_k: 2}", "    parents: {top_k: 0}", "stages[1].parents.top_k", ">= 1"},
      {
        "    parents: {top_k: 2}",
        "    parent_count: 2",
        "unknown key 'stages[1].parent_count'",
        "parents"
      },
      {
        "    parents: {top_k: 2}",
        "    parents: {top: 2}",
        "unknown key 'stages[1].parents.top'",
        "top_k"
      },
      {
        "  - name: general\n",
        "  - name: general\n    parents: {top_k: 1}\n",
        "stages[0].parents",
        "first stage"
      },
      {"  - name: domain", "  - name: general", "stages[1].name 'general'", "earlier stage"},
      {
        "    defaults: {steps: 4}",
        "    defaults: {parent: x}",
        "stages[1].defaults.parent",
        "previous stage"
      },
      {
        "    defaults: {steps: 4}",
        "    defaults: {steps: many}",
        "stages[1] (domain)",
        "steps must be an integer"
      },
      {
        "    grid:\n      lr_ratio:",
        "    grid:\n      ratio:",
        "stages[1] (domain)",
        "unknown key 'grid.ratio'"
      },
    };
    for (String[] c : cases) {
      assertThat(TWO_STAGES).contains(c[0]);
      Path file = write(TWO_STAGES.replace(c[0], c[1]));
      assertThatThrownBy(() -> StagedSweep.validate(SweepConfig.read(file)))
          .as(c[1])
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith(file.toString())
          .hasMessageContaining(c[2])
          .hasMessageContaining(c[3])
          .hasMessageNotContaining("\n");
    }
    Path empty = write(TWO_STAGES.substring(0, TWO_STAGES.indexOf("stages:")) + "stages: []\n");
    assertThatThrownBy(() -> SweepConfig.read(empty))
        .hasMessageContaining("stages must be a non-empty list");
  }

  /** From the CLI: an unknown stage key is exit 2 with one line on stderr, before Spark starts. */
  @Test
  void anUnknownStageKeyIsExit2() throws IOException {
    Path file =
        write(
            TWO_STAGES
                .replace("models/stories260K", STORIES.toString())
                .replace("    parents: {top_k: 2}", "    parents: {top_k: 2}\n    steps: 3"));
    for (String command : List.of("run", "train")) {
      InProcessCli.Output r =
          InProcessCli.execute(
              command, "--config", file.toString(), "--output", dir.resolve("o").toString());
      assertThat(r.exitCode()).as(command).isEqualTo(2);
      assertThat(r.err().lines().filter(l -> !l.isBlank()))
          .as(command)
          .singleElement()
          .asString()
          .contains("unknown key 'stages[1].steps'", "valid keys in stages[1]", "parents");
    }
  }

  private Path write(String yaml) throws IOException {
    Path f = Files.createTempFile(dir, "stages", ".yaml");
    Files.writeString(f, yaml);
    return f;
  }
}
