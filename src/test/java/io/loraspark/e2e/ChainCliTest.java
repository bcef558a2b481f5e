package io.loraspark.e2e;

import static io.loraspark.e2e.CliScoreTest.assertInputError;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.pipeline.testing.RandomAdapters;
import io.loraspark.train.lora.AdapterChain;
import io.loraspark.train.lora.AdapterParent;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A tree of adapters on the real stories260K, through the CLI: a child on a LoRA ← LoRA-FA chain
 * scores the same live ({@code score --adapter CHILD} runs the frozen chain under it), exported as
 * one PEFT LoRA of rank Σ r ({@code export}), and merged into the base ({@code merge}), within 1e-4
 * of the mean loss; a DoRA chain scores and merges but is not exported; a child whose parent
 * changed is refused with one line naming both directories.
 */
class ChainCliTest {
  static final Path STORIES = CliScoreTest.STORIES;
  static final Path DATA = CliScoreTest.REF.resolve("stories260K_input_ids.jsonl");
  static final double TOLERANCE = 1e-4;
  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path shared;
  @TempDir Path tmp;

  static ModelWeights base;
  static Path child; // lora r3 ← lora-fa r2 ← lora r4 (root)

  @BeforeAll
  static void chain() {
    base = CheckpointLoader.load(STORIES);
    Path root =
        RandomAdapters.save(
            base, shared.resolve("root"), LoraMethod.LORA, 4, 1, 1, 0.05, STORIES.toString());
    Path mid =
        RandomAdapters.save(base, shared.resolve("mid"), LoraMethod.LORA_FA, 2, 2, 2, 0.05, null);
    AdapterChain.record(mid, AdapterParent.of(root.toString()));
    child =
        RandomAdapters.save(
            base, shared.resolve("child"), LoraMethod.LORA, 3, 3, 3, 0.05, STORIES.toString());
    AdapterChain.record(child, AdapterParent.of(mid.toString()));
  }

  static double loss(Path model, Path adapter) throws Exception {
    CliRunner r =
        adapter == null
            ? CliRunner.run("score", "--model", model.toString(), "--data", DATA.toString())
            : CliRunner.run(
                "score",
                "--model",
                model.toString(),
                "--adapter",
                adapter.toString(),
                "--data",
                DATA.toString());
    assertThat(r.exitCode()).as("score exit code, stderr: %s", r.err()).isZero();
    return JSON.readTree(r.out()).get("loss").asDouble();
  }

  static JsonNode ok(String... args) throws Exception {
    CliRunner r = CliRunner.run(args);
    assertThat(r.exitCode()).as("%s exit code, stderr: %s", args[0], r.err()).isZero();
    return JSON.readTree(r.out());
  }

  @Test
  void theExportedChainScoresLikeTheChainLiveAndLikeTheMergedCheckpoint() throws Exception {
    double live = loss(STORIES, child);
    Path alone = tmp.resolve("alone"); // the child's own files without its parent record
    Files.createDirectories(alone);
    for (String f : new String[] {PeftAdapter.CONFIG_FILE, PeftAdapter.WEIGHTS_FILE}) {
      Files.copy(child.resolve(f), alone.resolve(f));
    }
    assertThat(Math.abs(loss(STORIES, alone) - live))
        .as("the parents change the loss")
        .isGreaterThan(1e-3);

    Path exported = tmp.resolve("exported");
    JsonNode json =
        ok(
            "export",
            "--model",
            STORIES.toString(),
            "--adapter",
            child.toString(),
            "--output",
            exported.toString());
    assertThat(json.get("rank").asInt()).as("r = 4 + 2 + 3").isEqualTo(9);
    assertThat(json.get("depth").asInt()).isEqualTo(2);
    JsonNode config = JSON.readTree(exported.resolve(PeftAdapter.CONFIG_FILE).toFile());
    assertThat(config.get("peft_type").asText()).isEqualTo("LORA");
    assertThat(config.get("r").asInt()).isEqualTo(9);
    assertThat(Files.exists(exported.resolve(AdapterChain.FILE)))
        .as("the export is a root")
        .isFalse();
    assertThat(loss(STORIES, exported))
        .as("exported vs live chain")
        .isCloseTo(live, org.assertj.core.data.Offset.offset(TOLERANCE));

    Path merged = tmp.resolve("merged");
    ok(
        "merge",
        "--model",
        STORIES.toString(),
        "--adapter",
        child.toString(),
        "--output",
        merged.toString());
    assertThat(loss(merged, null))
        .as("merged checkpoint vs live chain")
        .isCloseTo(live, org.assertj.core.data.Offset.offset(TOLERANCE));
  }

  @Test
  void aDoraChainScoresAndMergesButIsNotExported() throws Exception {
    Path root =
        RandomAdapters.save(base, tmp.resolve("dora"), LoraMethod.DORA, 2, 5, 5, 0.05, null);
    Path leaf =
        RandomAdapters.save(base, tmp.resolve("leaf"), LoraMethod.LORA, 2, 6, 6, 0.05, null);
    AdapterChain.record(leaf, AdapterParent.of(root.toString()));
    double live = loss(STORIES, leaf);
    Path merged = tmp.resolve("merged");
    ok(
        "merge",
        "--model",
        STORIES.toString(),
        "--adapter",
        leaf.toString(),
        "--output",
        merged.toString());
    assertThat(loss(merged, null))
        .as("merged DoRA chain vs live")
        .isCloseTo(live, org.assertj.core.data.Offset.offset(TOLERANCE));
    CliRunner r =
        CliRunner.run(
            "export",
            "--model",
            STORIES.toString(),
            "--adapter",
            leaf.toString(),
            "--output",
            tmp.resolve("out").toString());
    assertInputError(r, "a dora adapter");
    assertThat(r.err()).contains("`merge` folds it into the base");
  }

  @Test
  void aChildWhoseParentChangedIsRefusedNamingBoth() throws Exception {
    Path root = RandomAdapters.save(base, tmp.resolve("p"), 7, 0.05);
    Path leaf = RandomAdapters.save(base, tmp.resolve("c"), 8, 0.05);
    AdapterChain.record(leaf, AdapterParent.of(root.toString()));
    RandomAdapters.save(base, root, 9, 0.05); // the parent retrained in place
    CliRunner r =
        CliRunner.run(
            "score",
            "--model",
            STORIES.toString(),
            "--adapter",
            leaf.toString(),
            "--data",
            DATA.toString());
    assertInputError(r, "adapter " + leaf + " was trained on parent " + root);
  }
}
