package io.loraspark.pipeline.sweep;

import static io.loraspark.pipeline.sweep.SweepFixtures.entry;
import static io.loraspark.pipeline.sweep.SweepFixtures.planned;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.pipeline.report.CsvTable;
import io.loraspark.train.loop.AdapterStatus;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LeaderboardTest {
  private static final List<Integer> RUNGS = List.of(10, 20, 40);

  /**
   * ok by loss (ties: fewer params, then id), then pruned, then failed (never ran last: no loss, no
   * parameter count).
   */
  private static List<SweepRunner.Entry> board() {
    return Leaderboard.ranked(
        List.of(
            new SweepRunner.Entry(
                planned("a000-r4", 4, 1), null, AdapterStatus.FAILED, 0, List.of(), 0),
            entry(planned("a001-r4", 4, 1), AdapterStatus.PRUNED, 1, 3.5, 100),
            entry(planned("a002-r8", 8, 1), AdapterStatus.OK, 3, 4.0, 200),
            entry(planned("a003-r4", 4, 1), AdapterStatus.OK, 3, 4.0, 100),
            entry(planned("a004-r8", 8, 1), AdapterStatus.FAILED, 2, Double.NaN, 200),
            entry(planned("a005-r8", 8, 1), AdapterStatus.OK, 3, 3.9, 200),
            entry(planned("a006-r8", 8, 1), AdapterStatus.PRUNED, 2, 3.8, 200)));
  }

  @Test
  void ranksByStatusThenLossThenParamsThenId() {
    assertThat(board())
        .extracting(SweepRunner.Entry::id)
        .containsExactly(
            "a005-r8", "a003-r4", "a002-r8", "a001-r4", "a006-r8", "a004-r8", "a000-r4");
  }

  @Test
  void writtenRowsReadBackThroughTheOneReader(@TempDir Path dir) throws IOException {
    Path file = dir.resolve(Leaderboard.CSV);
    Files.writeString(
        file, TableFiles.csv(Leaderboard.SCHEMA, Leaderboard.rows(board(), e -> RUNGS)));
    CsvTable t = Leaderboard.read(file);
    assertThat(t.header()).containsExactly(Leaderboard.SCHEMA.fieldNames());
    List<Map<String, String>> rows = t.maps();
    assertThat(rows.get(0))
        .containsEntry("rank", "1")
        .containsEntry("adapter_id", "a005-r8")
        .containsEntry("status", "ok")
        .containsEntry("lora_rank", "8")
        .containsEntry("eval_loss", "3.90000")
        .containsEntry("perplexity", String.format(java.util.Locale.ROOT, "%.6g", Math.exp(3.9)))
        .containsEntry("targets", "q,k,v,o,gate,up,down")
        .containsEntry("steps", "30");
    assertThat(rows.get(0).get("pruned_at_round")).isNull();
    assertThat(rows.get(4))
        .as("pruned in round 2, at its rung")
        .containsEntry("status", "pruned")
        .containsEntry("pruned_at_round", "2")
        .containsEntry("pruned_at_step", "20");
    assertThat(rows.get(6))
        .as("never ran")
        .containsEntry("status", "failed")
        .containsEntry("failure", "never ran")
        .containsEntry("steps", "0");
    assertThat(rows.get(5))
        .containsEntry("status", "failed")
        .containsEntry("failure", "step 3: non-finite loss NaN");
    assertThat(rows.get(5).get("eval_loss")).isNull();
  }

  @Test
  void readerNamesTheRowAndColumnOfABadValue(@TempDir Path dir) throws IOException {
    Path file = dir.resolve(Leaderboard.CSV);
    String header = String.join(",", Leaderboard.REQUIRED) + "\n";
    Files.writeString(file, header + "1,a,lora,4,1,2.5,done\n");
    assertThatThrownBy(() -> Leaderboard.read(file))
        .hasMessageContaining(file + ": row 2: status 'done' is not one of [ok, pruned, failed]");
    Files.writeString(file, header + "1,a,lora,four,1,2.5,ok\n");
    assertThatThrownBy(() -> Leaderboard.read(file))
        .hasMessageContaining("row 2: lora_rank must be a number but was 'four'");
    Files.writeString(file, "rank,adapter_id\n1,a\n");
    assertThatThrownBy(() -> Leaderboard.read(file)).hasMessageContaining("missing column method");
  }
}
