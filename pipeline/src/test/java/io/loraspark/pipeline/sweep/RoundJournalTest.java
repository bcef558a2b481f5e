package io.loraspark.pipeline.sweep;

import static io.loraspark.pipeline.sweep.SweepFixtures.outcome;
import static io.loraspark.pipeline.sweep.SweepFixtures.planned;
import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.train.loop.AdapterKey;
import io.loraspark.train.loop.AdapterOutcome;
import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.loop.AdapterStatus;
import io.loraspark.train.model.quant.BaseQuant;
import io.loraspark.train.spark.GroupTask;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RoundJournalTest {
  private static GroupTask task(int stopAt, AdapterSpec... specs) {
    return new GroupTask(
        "run",
        0,
        0,
        "/models/m",
        "/data/d",
        "/runs/run",
        List.of(specs),
        null,
        stopAt,
        1,
        10,
        BaseQuant.NONE,
        false,
        io.loraspark.train.model.precision.Precision.FP32);
  }

  private static final AdapterSpec A = planned("a000-r4", 4, 1).spec();
  private static final AdapterSpec B = planned("a001-r8", 8, 4).spec();
  private static final List<AdapterOutcome> OUTCOMES =
      List.of(
          outcome("a000-r4", AdapterStatus.OK, 10, 4.25, 100),
          outcome("a001-r8", AdapterStatus.FAILED, 3, Double.NaN, 200));

  @Test
  void aRecordedRoundReadsBackForTheSameTasks(@TempDir Path run) throws IOException {
    RoundJournal j = new RoundJournal(run);
    List<GroupTask> tasks = List.of(task(10, A, B));
    assertThat(j.read(1, tasks)).isEqualTo(new RoundJournal.Read(null, null));
    j.write(1, tasks, OUTCOMES);
    RoundJournal.Read r = new RoundJournal(run).read(1, tasks);
    assertThat(r.note()).isNull();
    assertThat(r.outcomes()).as("records compare NaN equal").isEqualTo(OUTCOMES);
    assertThat(Files.readString(j.file(1)))
        .contains("\"plan_format\":2", "\"status\":\"ok\"", "\"status\":\"failed\"");
  }

  @Test
  void keyIsTheDocumentedTextOfNamedFields() {
    StringBuilder text = new StringBuilder("lora-spark round key v2\n");
    text.append("task model=/models/m data=/data/d stop_at=10 precision=fp32\n");
    for (AdapterSpec s : List.of(A, B)) {
      text.append("adapter=").append(s.id());
      AdapterKey.settings(s)
          .build()
          .fields()
          .forEach((k, v) -> text.append(' ').append(k).append('=').append(v));
      text.append('\n');
    }
    assertThat(RoundJournal.key(List.of(task(10, A, B))))
        .isEqualTo(AdapterKey.sha256Hex(text.toString()));
    assertThat(text.toString()).contains(" rank=8 alpha=16.0 ", " lr_ratio=4.0 ");
  }

  @Test
  void aChangedPlanIsReportedInOneLineAndTheRoundRunsAgain(@TempDir Path run) {
    RoundJournal j = new RoundJournal(run);
    j.write(2, List.of(task(20, A, B)), OUTCOMES);
    RoundJournal.Read r = j.read(2, List.of(task(20, A, planned("a001-r8", 8, 8).spec())));
    assertThat(r.outcomes()).isNull();
    assertThat(r.note())
        .contains("round-2.json: recorded for another plan", "round 2 runs again")
        .doesNotContain("\n");
  }

  /** The journal 296007a wrote: plan = SHA-256 of the task fields and the specs' record text. */
  @Test
  void aFormat1RecordOfTheSameTasksIsUsedWithANote(@TempDir Path run) throws IOException {
    RoundJournal j = new RoundJournal(run);
    List<GroupTask> tasks = List.of(task(10, A, B));
    String legacy = AdapterKey.sha256Hex("/models/m|/data/d|10|" + A + "|" + B + "\n");
    j.write(1, tasks, OUTCOMES);
    Files.writeString(
        j.file(1),
        Files.readString(j.file(1))
            .replace(RoundJournal.key(tasks), legacy)
            .replace(",\"plan_format\":2", ""));
    RoundJournal.Read r = j.read(1, tasks);
    assertThat(r.outcomes()).as("records compare NaN equal").isEqualTo(OUTCOMES);
    assertThat(r.note()).contains("round key format 1", "matches; used");

    Files.writeString(
        j.file(1), Files.readString(j.file(1)).replace(legacy, "0" + legacy.substring(1)));
    RoundJournal.Read stale = j.read(1, tasks);
    assertThat(stale.outcomes()).isNull();
    assertThat(stale.note()).contains("round key format 1", "no longer matches", "runs again");
  }

  @Test
  void anUnreadableOrFutureRecordRunsTheRoundAgain(@TempDir Path run) throws IOException {
    RoundJournal j = new RoundJournal(run);
    List<GroupTask> tasks = List.of(task(10, A));
    j.write(1, tasks, OUTCOMES.subList(0, 1));
    Files.writeString(
        j.file(1), Files.readString(j.file(1)).replace("\"plan_format\":2", "\"plan_format\":3"));
    assertThat(j.read(1, tasks).note()).contains("round key format 3 is not this build's format 2");
    Files.writeString(j.file(1), "{\"plan\": ");
    RoundJournal.Read r = j.read(1, tasks);
    assertThat(r.outcomes()).isNull();
    assertThat(r.note()).contains("round-1.json: unreadable", "round 1 runs again");
  }
}
