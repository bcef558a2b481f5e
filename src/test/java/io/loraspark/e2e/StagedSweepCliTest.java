package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.pipeline.sweep.Leaderboard;
import io.loraspark.train.lora.AdapterChain;
import io.loraspark.train.lora.AdapterParent;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A two-stage sweep end to end ({@code run} with {@code stages:}): stage 1 on the bundled
 * self-instruct seed tasks, stage 2 on the bundled user-oriented tasks under stage 1's winner. The
 * tree is checked in every output (leaderboard parent and depth, run.json, the children's parent
 * hash, best/, the report), and a rerun resumes stage by stage without training anything.
 */
class StagedSweepCliTest {
  @TempDir Path tmp;

  /** The two-stage sweep: model, then a {@code master:} line (or none), formatted in. */
  static final String TWO_STAGES =
      """
      model: '%s'
      %s
      adapters_per_task: 2
      checkpoint_every: 0
      defaults:
        lr: 2.0e-3
        steps: 6
        batch_size: 4
        targets: [q, v]
        seed: 42
      stages:
        - name: seeds
          preprocess:
            input: '%s'
            format: alpaca
            max_seq_len: 128
            eval_fraction: 0.15
            shards: 1
          grid:
            rank: [2]
            lr_ratio: [1, 8]
          pruning: none
        - name: users
          preprocess:
            input: '%s'
            format: self_instruct
            max_seq_len: 256
            eval_fraction: 0.15
            shards: 1
          defaults: {steps: 4, rank: 2}
          grid:
            lr_ratio: [1, 8]
          pruning: none
      """;

  /** {@link #TWO_STAGES} with the bundled model and data sets. */
  static String twoStages(String masterLine) {
    return TWO_STAGES.formatted(
        CliScoreTest.STORIES.toAbsolutePath(),
        masterLine,
        CliScoreTest.ROOT.resolve("data/self-instruct/alpaca-format-self-instruct-seed.jsonl"),
        CliScoreTest.ROOT.resolve(
            "data/self-instruct-user-oriented/self-instruct-user-oriented-instructions.jsonl"));
  }

  @Test
  void twoStagesTrainATreeAndAFinishedStageIsNotRetrained() throws Exception {
    Path config = Files.writeString(tmp.resolve("tree.yaml"), twoStages("master: local[2]"));
    Path run = tmp.resolve("run");
    CliRunner r = CliRunner.run("run", "--config", config.toString(), "--output", run.toString());
    assertThat(r.exitCode()).as("stderr: %s", r.err()).isZero();
    JsonNode summary = new ObjectMapper().readTree(r.out());
    assertThat(summary.get("adapters").asInt()).isEqualTo(4);
    assertThat(summary.get("ok").asInt()).isEqualTo(4);
    assertThat(summary.get("preprocess").fieldNames())
        .toIterable()
        .containsExactly("seeds", "users");

    String winner = verifyTree(run, summary.get("best_adapter").asText());

    // a rerun: both stages are finished, so every round comes back from its journal, untrained
    Map<Path, FileTime> before = adapterFiles(run);
    List<Map<String, String>> boardBefore = board(run);
    CliRunner again =
        CliRunner.run("run", "--config", config.toString(), "--output", run.toString());
    assertThat(again.exitCode()).as("stderr: %s", again.err()).isZero();
    for (String stage : List.of("seeds", "users")) {
      assertThat(again.err())
          .contains(
              "sweep round 1: already done, results from "
                  + run.resolve("stages").resolve(stage).resolve("rounds/round-1.json"));
    }
    assertThat(again.err()).as("no round trained (no round bar)").doesNotContain("· adapters ");
    assertThat(adapterFiles(run)).as("adapter files, rewritten only by training").isEqualTo(before);
    assertThat(board(run)).isEqualTo(boardBefore);
    assertThat(verifyTree(run, summary.get("best_adapter").asText())).isEqualTo(winner);

    // stage 2 interrupted before its round was recorded: its task runs again and resumes from the
    // adapters' checkpoints at step 4 (no step left to train), stage 1 is still not retrained, and
    // the tree comes out the same
    Files.delete(run.resolve("stages/users/rounds/round-1.json"));
    Map<Path, FileTime> seeds = new LinkedHashMap<>(before);
    seeds.keySet().removeIf(p -> !p.startsWith(run.resolve("stages/seeds")));
    CliRunner resumed =
        CliRunner.run("run", "--config", config.toString(), "--output", run.toString());
    assertThat(resumed.exitCode()).as("stderr: %s", resumed.err()).isZero();
    assertThat(resumed.err())
        .contains("sweep round 1: already done, results from " + run.resolve("stages/seeds"))
        .contains("· tasks 1/1 · adapters 2/2 · steps 0/8 ·");
    assertThat(adapterFiles(run)).containsAllEntriesOf(seeds);
    assertThat(withoutTimes(board(run)))
        .as("the resumed stage's losses")
        .isEqualTo(withoutTimes(boardBefore));
    assertThat(verifyTree(run, summary.get("best_adapter").asText())).isEqualTo(winner);
  }

  /**
   * The tree's outputs: stage 2's two adapters under stage 1's winner, everywhere.
   *
   * @return stage 1's winner
   */
  static String verifyTree(Path run, String best) throws IOException {
    String winner = column(board(run.resolve("stages/seeds")), "adapter_id").get(0);
    Path winnerDir = run.resolve("stages/seeds/adapters").resolve(winner);
    List<Map<String, String>> board = board(run);
    assertThat(column(board, "adapter_id"))
        .as("deepest stage first, each ranked")
        .hasSize(4)
        .satisfies(ids -> assertThat(ids.subList(0, 2)).allMatch(id -> id.startsWith("users-")))
        .satisfies(ids -> assertThat(ids.subList(2, 4)).allMatch(id -> id.startsWith("seeds-")))
        .contains("users-a000-x1", "users-a001-x8", "seeds-a000-r2-x1", "seeds-a001-r2-x8");
    assertThat(column(board, "rank")).containsExactly("1", "2", "3", "4");
    for (Map<String, String> row : board) {
      boolean child = row.get("adapter_id").startsWith("users-");
      assertThat(row.get("parent")).as("parent of %s", row).isEqualTo(child ? winner : null);
      assertThat(row.get("depth")).as("depth of %s", row).isEqualTo(child ? "1" : "0");
      assertThat(List.of(row.get("eval_loss"), row.get("base_eval_loss")))
          .as("%s's eval loss and that of what it trained on", row.get("adapter_id"))
          .doesNotContainNull();
    }
    assertThat(best).isEqualTo(board.get(0).get("adapter_id"));
    assertThat(Files.readAllBytes(run.resolve("best/adapter_model.safetensors")))
        .isEqualTo(
            Files.readAllBytes(
                run.resolve("stages/users/adapters").resolve(best + "/adapter_model.safetensors")));

    JsonNode json = new ObjectMapper().readTree(run.resolve("run.json").toFile());
    assertThat(json.get("stages")).hasSize(2);
    JsonNode users = json.get("stages").get(1);
    assertThat(users.get("name").asText()).isEqualTo("users");
    assertThat(users.get("dir").asText()).isEqualTo("stages/users");
    assertThat(users.get("top_k").asInt()).isEqualTo(1);
    assertThat(users.get("parents").toString()).isEqualTo("[\"" + winner + "\"]");
    assertThat(json.get("stages").get(0).get("best").asText()).isEqualTo(winner);
    String hash = AdapterParent.contentHash(winnerDir.toString());
    for (JsonNode a : json.get("adapters")) {
      boolean child = a.get("adapter_id").asText().startsWith("users-");
      JsonNode resolved = a.path("resolved");
      assertThat(resolved.path("parent_sha256").asText(null))
          .as("run.json: %s records its parent's content hash", a.get("adapter_id"))
          .isEqualTo(child ? hash : null);
      if (child) {
        assertThat(Path.of(resolved.path("parent").asText()).toRealPath())
            .isEqualTo(winnerDir.toRealPath());
      }
      assertThat(a.path("settings").path("parent").asText(null)).isEqualTo(child ? winner : null);
    }
    // each child's directory records its parent's path and content hash (what loading it checks)
    for (String child : List.of("users-a000-x1", "users-a001-x8")) {
      Path dir = run.resolve("stages/users/adapters").resolve(child);
      JsonNode recorded = new ObjectMapper().readTree(dir.resolve(AdapterChain.FILE).toFile());
      assertThat(Path.of(recorded.get("parent").asText()).toRealPath())
          .as("%s's recorded parent", child)
          .isEqualTo(winnerDir.toRealPath());
      assertThat(recorded.get("parent_sha256").asText()).isEqualTo(hash);
      assertThat(AdapterChain.of(dir.toString()).depth()).isEqualTo(1);
    }

    String html = Files.readString(run.resolve("report.html"));
    assertThat(html).contains("<h2>Adapter tree</h2>", "gain ");
    int root = html.indexOf("<b>" + winner + "</b>", html.indexOf("id=\"tree\""));
    assertThat(root).as("the winner is a node of the tree").isPositive();
    assertThat(html.indexOf("<b>users-a000-x1</b>", root)).isPositive();
    assertThat(Files.readString(run.resolve("report.md")))
        .contains("## Adapter tree", "- " + winner + " · eval loss ")
        .containsPattern(
            "\n  - users-a000-x1 · eval loss \\d\\.\\d{4} · gain [+-]\\d\\.\\d{4} over parent");
    return winner;
  }

  static List<Map<String, String>> board(Path runDir) {
    return Leaderboard.read(runDir.resolve(Leaderboard.CSV)).maps();
  }

  static List<String> column(List<Map<String, String>> board, String name) {
    return board.stream().map(r -> r.get(name)).toList();
  }

  /** Leaderboard rows without the timing columns, which a resumed round adds to. */
  private static List<Map<String, String>> withoutTimes(List<Map<String, String>> board) {
    return board.stream()
        .map(
            r -> {
              Map<String, String> m = new LinkedHashMap<>(r);
              m.remove("wall_seconds");
              return m;
            })
        .toList();
  }

  /** Every file under the stages' adapters/ with its modification time. */
  private static Map<Path, FileTime> adapterFiles(Path run) throws IOException {
    Map<Path, FileTime> out = new LinkedHashMap<>();
    for (String stage : List.of("seeds", "users")) {
      try (Stream<Path> s = Files.walk(run.resolve("stages").resolve(stage).resolve("adapters"))) {
        for (Path p : s.filter(Files::isRegularFile).sorted().toList()) {
          out.put(p, Files.getLastModifiedTime(p));
        }
      }
    }
    return out;
  }
}
