package io.loraspark.train.loop;

import static io.loraspark.train.model.TestModels.rows;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.optim.LrSchedule;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The fused multi-adapter trainer against training each adapter alone, and checkpoint/resume
 * against an uninterrupted run, on a small random Llama.
 */
class FusedTrainerTest {
  /** An untied Llama without biases; rows of length 5-16. */
  @RegisterExtension
  static final TrainingFixture data =
      new TrainingFixture(false, 7, rows(40, 11, 12), rows(8, 12, 12));

  static AdapterSpec spec(
      String id, int rank, double lrRatio, double dropout, int steps, long seed) {
    return new AdapterSpec(
        id,
        TrainingFixture.lora(LoraMethod.LORA, rank, dropout),
        TrainingFixture.cosine(steps, 3, lrRatio, seed));
  }

  static List<AdapterSpec> threeSpecs(int steps) {
    return List.of(
        spec("a", 1, 1.0, 0.0, steps, 1),
        spec("b", 2, 4.0, 0.1, steps, 2),
        spec("c", 4, 16.0, 0.0, steps, 3));
  }

  /**
   * The done-when criterion: K adapters trained fused equal each trained alone on the same batches.
   * In double precision so that the different row counts of the fused GEMMs (which change float
   * rounding) cannot hide a real difference: 1e-9 relative is far above double rounding after five
   * Adam steps and far below any effect of one adapter leaking into another's rows.
   */
  @Test
  void fusedEqualsSeparateInDouble() {
    Transformer m = data.model(DataType.DOUBLE);
    data.fusedThenEachAlone(
        m,
        threeSpecs(5),
        (s, fused, alone) -> {
          assertThat(fused.outcome().status()).isEqualTo(AdapterStatus.OK);
          assertThat(maxRelDiff(fused.weights(), alone.weights()))
              .as("adapter %s", s.id())
              .isLessThan(1e-9);
          assertThat(fused.outcome().evalLoss())
              .isCloseTo(alone.outcome().evalLoss(), org.assertj.core.data.Offset.offset(1e-9));
          // the adapters really moved: B started at zero
          assertThat(alone.weights().modules().iterator().next().b().norm2Number().doubleValue())
              .isGreaterThan(1e-4);
        });
  }

  @Test
  void resumedRunEndsBitIdenticalToUninterruptedRun(@TempDir Path dir) {
    Transformer m = data.model(DataType.FLOAT);
    List<AdapterSpec> specs = threeSpecs(12);
    List<TrainedAdapter> whole = data.trainer(m, specs).run(x -> {});

    Path ckpt = dir.resolve("ckpt");
    FusedTrainer second = data.killedAndRestarted(m, specs, ckpt, 4, 2, 7);
    assertThat(AdapterCheckpoint.stepDirs(ckpt.resolve("a")))
        .extracting(p -> p.getFileName().toString())
        .containsExactly("step-000004");

    assertThat(second.resume()).isEqualTo(3);
    List<TrainedAdapter> resumed = second.run(x -> {});
    for (int k = 0; k < specs.size(); k++) {
      assertBitIdentical(whole.get(k), resumed.get(k));
    }
    assertThat(AdapterCheckpoint.stepDirs(ckpt.resolve("b")))
        .extracting(p -> p.getFileName().toString())
        .containsExactly("step-000008", "step-000012");
  }

  @Test
  void damagedNewestCheckpointFallsBackToThePreviousOne(@TempDir Path dir) throws IOException {
    Transformer m = data.model(DataType.FLOAT);
    List<AdapterSpec> specs = List.of(spec("a", 2, 4.0, 0.1, 10, 5));
    TrainedAdapter whole = data.trainer(m, specs).run(x -> {}).get(0);
    Path ckpt = dir.resolve("ckpt");
    data.trainer(m, specs).checkpointing(ckpt, 3, 2).stopAt(6).run(x -> {});
    List<Path> steps = AdapterCheckpoint.stepDirs(ckpt.resolve("a"));
    assertThat(steps)
        .extracting(p -> p.getFileName().toString())
        .containsExactly("step-000003", "step-000006");
    Path weights = steps.get(1).resolve("adapter_model.safetensors");
    byte[] bytes = Files.readAllBytes(weights);
    bytes[bytes.length - 3] ^= 0x40;
    Files.write(weights, bytes);

    FusedTrainer again = data.trainer(m, specs).checkpointing(ckpt, 3, 2);
    assertThat(again.resume()).isEqualTo(1);
    assertBitIdentical(whole, again.run(x -> {}).get(0));
  }

  /** Successive halving continues a stopped adapter from its rung checkpoint on the same curve. */
  @Test
  void stopAtThenContinueMatchesOneRun(@TempDir Path dir) {
    Transformer m = data.model(DataType.FLOAT);
    List<AdapterSpec> specs = threeSpecs(9);
    List<TrainedAdapter> whole = data.trainer(m, specs).run(x -> {});
    Path ckpt = dir.resolve("ckpt");
    List<TrainedAdapter> rung =
        data.trainer(m, specs).checkpointing(ckpt, 0, 1).stopAt(3).run(x -> {});
    assertThat(rung).extracting(t -> t.outcome().steps()).containsOnly(3);
    FusedTrainer next = data.trainer(m, specs).checkpointing(ckpt, 0, 1);
    next.resume();
    List<TrainedAdapter> done = next.run(x -> {});
    for (int k = 0; k < specs.size(); k++) {
      assertBitIdentical(whole.get(k), done.get(k));
    }
  }

  @Test
  void checkpointOfAnotherConfigurationIsRefused(@TempDir Path dir) {
    Transformer m = data.model(DataType.FLOAT);
    Path ckpt = dir.resolve("ckpt");
    data.trainer(m, List.of(spec("a", 2, 4.0, 0.0, 2, 5))).checkpointing(ckpt, 1, 1).run(x -> {});
    FusedTrainer other =
        data.trainer(m, List.of(spec("a", 2, 8.0, 0.0, 2, 5))).checkpointing(ckpt, 1, 1);
    assertThatThrownBy(other::resume)
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("step-000002")
        .hasMessageContaining("another adapter configuration")
        .hasMessageContaining("lr_ratio 4.0 → 8.0");
  }

  /** A diverging adapter is stopped and marked failed; the others in the same fused step go on. */
  @Test
  void divergingAdapterFailsAloneAndOthersFinish() {
    Transformer m = data.model(DataType.FLOAT);
    AdapterSpec ok = spec("ok", 2, 1.0, 0.0, 6, 1);
    AdapterSpec wild =
        new AdapterSpec(
            "wild",
            ok.lora(),
            new TrainConfig(6, 3, 1, 1e30, 1e6, 0.0, 0, LrSchedule.Kind.CONSTANT, 0.0, 0, 2));
    List<TrainedAdapter> out = data.trainer(m, List.of(ok, wild)).run(x -> {});
    assertThat(out.get(0).outcome().status()).isEqualTo(AdapterStatus.OK);
    assertThat(out.get(0).outcome().steps()).isEqualTo(6);
    assertThat(out.get(0).outcome().evalLoss()).isFinite();
    assertThat(out.get(1).outcome().status()).isEqualTo(AdapterStatus.FAILED);
    assertThat(out.get(1).outcome().failure()).startsWith("step ").contains("non-finite");
    TrainedAdapter okAlone = data.trainer(m, List.of(ok)).run(x -> {}).get(0);
    assertThat(maxRelDiff(out.get(0).weights(), okAlone.weights())).isLessThan(1e-4);
  }

  static void assertBitIdentical(TrainedAdapter expected, TrainedAdapter actual) {
    assertThat(actual.outcome().steps()).isEqualTo(expected.outcome().steps());
    assertThat(actual.outcome().metrics())
        .extracting(StepMetrics::trainLoss)
        .containsExactlyElementsOf(
            expected.outcome().metrics().stream().map(StepMetrics::trainLoss).toList());
    assertThat(actual.outcome().evalLoss()).isEqualTo(expected.outcome().evalLoss());
    List<LoraWeights.Module> a = List.copyOf(expected.weights().modules());
    List<LoraWeights.Module> b = List.copyOf(actual.weights().modules());
    for (int i = 0; i < a.size(); i++) {
      assertThat(b.get(i).a().data().asFloat())
          .as(a.get(i).name())
          .containsExactly(a.get(i).a().data().asFloat());
      assertThat(b.get(i).b().data().asFloat())
          .as(a.get(i).name())
          .containsExactly(a.get(i).b().data().asFloat());
    }
  }

  /** max |x - y| / max|y| over every A and B, per tensor. */
  static double maxRelDiff(LoraWeights x, LoraWeights y) {
    double worst = 0;
    List<LoraWeights.Module> xs = List.copyOf(x.modules());
    List<LoraWeights.Module> ys = List.copyOf(y.modules());
    for (int i = 0; i < xs.size(); i++) {
      for (int f = 0; f < 2; f++) {
        var a = f == 0 ? xs.get(i).a() : xs.get(i).b();
        var b = f == 0 ? ys.get(i).a() : ys.get(i).b();
        double scale = Math.max(b.amaxNumber().doubleValue(), 1e-30);
        worst = Math.max(worst, a.sub(b).amaxNumber().doubleValue() / scale);
      }
    }
    return worst;
  }
}
