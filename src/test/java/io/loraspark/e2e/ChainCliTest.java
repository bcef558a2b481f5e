package io.loraspark.e2e;

import static io.loraspark.e2e.CliScoreTest.assertInputError;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.pipeline.testing.RandomAdapters;
import io.loraspark.train.data.TokenLimits;
import io.loraspark.train.data.TokenRowsJsonl;
import io.loraspark.train.lora.AdapterChain;
import io.loraspark.train.lora.AdapterParent;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.TokenRow;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A tree of adapters on the real stories260K, through the CLI: a child on a LoRA ← LoRA-FA chain
 * scores the same live ({@code score --adapter CHILD} runs the frozen chain under it), exported as
 * one PEFT LoRA of rank Σ r ({@code export}), and merged into the base ({@code merge}), within 1e-4
 * of the mean loss; a DoRA chain scores and merges but is not exported or decoded; a child whose
 * parent changed is refused with one line naming both directories.
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

  /** {@code score} of {@code data} on {@code model} with {@code adapter} (null: none). */
  static CliRunner score(Path model, Path adapter, Path data) {
    List<String> args =
        new ArrayList<>(List.of("score", "--model", model.toString(), "--data", data.toString()));
    if (adapter != null) {
      args.addAll(List.of("--adapter", adapter.toString()));
    }
    return CliRunner.run(args.toArray(String[]::new));
  }

  static double loss(Path model, Path adapter) throws Exception {
    return loss(model, adapter, DATA);
  }

  static double loss(Path model, Path adapter, Path data) throws Exception {
    CliRunner r = score(model, adapter, data);
    assertThat(r.exitCode()).as("score exit code, stderr: %s", r.err()).isZero();
    return JSON.readTree(r.out()).get("loss").asDouble();
  }

  /** {@code merge} of {@code adapter} with its chain into {@code out}; asserts exit 0. */
  static void merge(Path adapter, Path out) throws Exception {
    ok(
        "merge",
        "--model",
        STORIES.toString(),
        "--adapter",
        adapter.toString(),
        "--output",
        out.toString());
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
    merge(child, merged);
    assertThat(loss(merged, null))
        .as("merged checkpoint vs live chain")
        .isCloseTo(live, org.assertj.core.data.Offset.offset(TOLERANCE));
  }

  /**
   * {@code train --parent} trains on the chain: its baseline eval loss is the chain's score on the
   * same rows (1e-4), and the child records its parent with the parent's content hash.
   */
  @Test
  void trainWithAParentStartsFromTheChainAndRecordsIt() throws Exception {
    Path data = TrainCliTest.tokenizedSeeds(tmp.resolve("train.jsonl"), 128);
    Path out = tmp.resolve("grandchild");
    JsonNode json =
        ok(
            "train",
            "--model",
            STORIES.toString(),
            "--data",
            data.toString(),
            "--eval-data",
            data.toString(),
            "--output",
            out.toString(),
            "--parent",
            child.toString(),
            "--rank",
            "2",
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--quiet");
    CliRunner chainScore = score(STORIES, child, data);
    assertThat(chainScore.exitCode()).as("score, stderr: %s", chainScore.err()).isZero();
    assertThat(json.get("base_eval_loss").asDouble())
        .as("the child's baseline is its parent chain's loss")
        .isCloseTo(
            JSON.readTree(chainScore.out()).get("loss").asDouble(),
            org.assertj.core.data.Offset.offset(TOLERANCE));
    assertThat(AdapterChain.recorded(out.toString())).contains(AdapterParent.of(child.toString()));
    assertThat(AdapterChain.of(out.toString()).depth()).isEqualTo(3);
    loss(STORIES, out); // scores on its chain of three
  }

  /**
   * A Spark sweep whose adapters (lora and vera, fused in one task) have {@code parent}: the
   * executors train on the chain (each adapter's base eval loss is the chain's loss on the held-out
   * rows, 1e-4) and every adapter directory, and {@code best/}, records the parent and its hash.
   */
  @Test
  void aSweepWithAParentTrainsEveryAdapterOnTheChain() throws Exception {
    Path data = TrainCliTest.tokenizedSeeds(tmp.resolve("train.jsonl"), 128);
    Path config = tmp.resolve("children.yaml");
    Files.writeString(
        config,
        """
        model: %s
        data: %s
        run_id: children
        master: local[2]
        adapters_per_task: 2
        checkpoint_every: 0
        precision: fp32
        defaults: {lr: 2.0e-3, steps: 3, batch_size: 4, targets: [q, v], rank: 2, parent: %s}
        grid:
          method: [lora, vera]
        pruning: none
        """
            .formatted(STORIES.toAbsolutePath(), data, child));
    Path run = tmp.resolve("children");
    CliRunner r = CliRunner.run("train", "--config", config.toString(), "--output", run.toString());
    assertThat(r.exitCode()).as("stderr: %s", r.err()).isZero();
    StringBuilder evalRows = new StringBuilder(); // the rows the sweep holds out, as score reads
    for (TokenRow row : TokenRowsJsonl.read(data, TokenLimits.of(base.config()))) {
      if (TokenRowsJsonl.isEvalRow(row)) {
        evalRows.append(
            JSON.createObjectNode()
                .putPOJO("input_ids", row.inputIds())
                .putPOJO("labels", row.labels())
                .toString());
        evalRows.append('\n');
      }
    }
    Path eval = Files.writeString(tmp.resolve("eval.jsonl"), evalRows);
    double chainLoss = loss(STORIES, child, eval);
    List<String> lines = Files.readAllLines(run.resolve("leaderboard.csv"));
    List<String> header = Arrays.asList(lines.get(0).split(","));
    assertThat(lines).hasSize(3);
    for (String line : lines.subList(1, 3)) {
      String[] row = line.split(",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)");
      assertThat(row[header.indexOf("status")]).as(line).isEqualTo("ok");
      assertThat(Double.parseDouble(row[header.indexOf("base_eval_loss")]))
          .as("%s starts from its parent chain", line)
          .isCloseTo(chainLoss, org.assertj.core.data.Offset.offset(TOLERANCE));
      Path dir = run.resolve("adapters").resolve(row[header.indexOf("adapter_id")]);
      assertThat(AdapterChain.recorded(dir.toString()))
          .contains(AdapterParent.of(child.toString()));
    }
    assertThat(AdapterChain.of(run.resolve("best").toString()).depth()).isEqualTo(3);
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
    merge(leaf, merged);
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
    CliRunner decode =
        CliRunner.run(
            "generate",
            "--model",
            STORIES.toString(),
            "--adapter",
            leaf.toString(),
            "--prompt",
            "Once upon a time",
            "--max-new-tokens",
            "2");
    assertInputError(decode, "a dora adapter");
  }

  @Test
  void aChildWhoseParentChangedIsRefusedNamingBoth() throws Exception {
    Path root = RandomAdapters.save(base, tmp.resolve("p"), 7, 0.05);
    Path leaf = RandomAdapters.save(base, tmp.resolve("c"), 8, 0.05);
    AdapterChain.record(leaf, AdapterParent.of(root.toString()));
    RandomAdapters.save(base, root, 9, 0.05); // the parent retrained in place
    assertInputError(
        score(STORIES, leaf, DATA), "adapter " + leaf + " was trained on parent " + root);
  }
}
