package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Resume after a real kill: {@code bin/lora-pipeline train} is killed with SIGKILL once it has
 * written a mid-run checkpoint, started again with the same command, and must end with an adapter
 * byte-identical to an uninterrupted run's and the same per-step training losses.
 */
class TrainResumeIT {
  static final Path ROOT = LauncherIT.ROOT;

  @TempDir Path tmp;

  List<String> trainArgs(Path data, Path out) {
    return List.of(
        "train",
        "--model",
        "models/stories260K",
        "--data",
        data.toString(),
        "--output",
        out.toString(),
        "--rank",
        "4",
        "--lr",
        "1e-3",
        "--lr-ratio",
        "4",
        "--dropout",
        "0.05",
        "--steps",
        "24",
        "--batch-size",
        "4",
        "--checkpoint-every",
        "4",
        "--seed",
        "7",
        "--quiet");
  }

  @Test
  void killedRunResumesToTheSameAdapterAsAnUninterruptedRun() throws Exception {
    Path data = TrainCliTest.tokenizedSeeds(tmp.resolve("train.jsonl"), 160);
    Path whole = tmp.resolve("whole/adapter");
    Path killed = tmp.resolve("killed/adapter");

    LauncherIT.Result ref = LauncherIT.launch(trainArgs(data, whole).toArray(String[]::new));
    assertThat(ref.code()).as("uninterrupted run, stderr: %s", ref.errLines()).isZero();

    List<String> cmd = new ArrayList<>();
    cmd.add(ROOT.resolve("bin/lora-pipeline").toString());
    cmd.addAll(trainArgs(data, killed));
    Process p =
        new ProcessBuilder(cmd)
            .directory(ROOT.toFile())
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start();
    Path ckpts = killed.resolve("checkpoints/adapter");
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(4);
    while (p.isAlive() && !Files.exists(ckpts.resolve("step-000008"))) {
      assertThat(System.nanoTime())
          .as("a mid-run checkpoint within 4 minutes")
          .isLessThan(deadline);
      Thread.sleep(20);
    }
    assertThat(p.isAlive()).as("the run is still going when it is killed").isTrue();
    p.destroyForcibly(); // SIGKILL: no shutdown hooks, no cleanup
    assertThat(p.waitFor(1, TimeUnit.MINUTES)).isTrue();
    assertThat(killed.resolve("adapter_model.safetensors")).doesNotExist();

    LauncherIT.Result resumed = LauncherIT.launch(trainArgs(data, killed).toArray(String[]::new));
    assertThat(resumed.code()).as("resumed run, stderr: %s", resumed.errLines()).isZero();
    assertThat(Files.readAllBytes(killed.resolve("adapter_model.safetensors")))
        .as("adapter weights after kill + resume")
        .isEqualTo(Files.readAllBytes(whole.resolve("adapter_model.safetensors")));
    assertThat(trainLosses(killed)).isEqualTo(trainLosses(whole)).hasSize(24);
  }

  /** The train_loss column of metrics.csv, one entry per step. */
  static List<String> trainLosses(Path adapter) throws Exception {
    return Files.readAllLines(adapter.resolve("metrics.csv")).stream()
        .skip(1)
        .map(l -> l.split(",")[1] + ":" + l.split(",")[2])
        .toList();
  }
}
