package io.loraspark.train.lora;

import static io.loraspark.train.model.TestModels.rows;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.loop.AdapterStatus;
import io.loraspark.train.loop.TrainedAdapter;
import io.loraspark.train.loop.TrainingFixture;
import io.loraspark.train.model.Transformer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Plain LoRA, LoRA-FA, DoRA and PiSSA adapters trained together in one fused step against each
 * trained alone, and a checkpointed run of the mix resumed bit-identically, on a small random
 * Llama.
 */
class LoraFamilyTrainingTest {
  /** An untied Llama with q, k, v biases; rows of length 5-14. */
  @RegisterExtension
  static final TrainingFixture data =
      new TrainingFixture(true, 7, rows(30, 11, 10), rows(6, 12, 10));

  static AdapterSpec spec(String id, LoraMethod method, int rank, double dropout, int steps) {
    return new AdapterSpec(
        id,
        TrainingFixture.lora(method, rank, dropout),
        TrainingFixture.cosine(steps, 2, 4.0, id.hashCode()));
  }

  static List<AdapterSpec> mix(int steps) {
    return List.of(
        spec("lora", LoraMethod.LORA, 2, 0.1, steps),
        spec("dora", LoraMethod.DORA, 2, 0.1, steps),
        spec("fa", LoraMethod.LORA_FA, 4, 0.0, steps),
        spec("dora1", LoraMethod.DORA, 1, 0.0, steps),
        spec("pissa", LoraMethod.PISSA, 2, 0.1, steps));
  }

  /**
   * In double, so 1e-9 is far above rounding after four Adam steps and far below any leak of one
   * adapter's rows or method into another's.
   */
  @Test
  void mixedMethodsFusedEqualEachAloneInDouble() {
    Transformer m = data.model(DataType.DOUBLE);
    List<TrainedAdapter> fused = fusedEqualEachAlone(data, m, mix(4));
    LoraWeights init =
        LoraWeights.init(
            m.weights(), mix(4).get(2).lora(), mix(4).get(2).train().seed(), DataType.DOUBLE);
    LoraWeights fa = fused.get(2).weights();
    for (LoraWeights.Module mod : fa.modules()) {
      LoraWeights.Module i = init.module(mod.layer(), mod.proj());
      assertThat(mod.a().equals(i.a()))
          .as("LoRA-FA %s A frozen (no decay either)", mod.name())
          .isTrue();
      assertThat(mod.b().norm2Number().doubleValue())
          .as("LoRA-FA %s B trained", mod.name())
          .isGreaterThan(1e-4);
    }
    LoraWeights dora = fused.get(1).weights();
    LoraWeights doraInit =
        LoraWeights.init(
            m.weights(), mix(4).get(1).lora(), mix(4).get(1).train().seed(), DataType.DOUBLE);
    LoraWeights.Module d0 = dora.modules().iterator().next();
    assertThat(
            d0.state(DoraState.class)
                .magnitude()
                .sub(doraInit.modules().iterator().next().state(DoraState.class).magnitude())
                .amaxNumber()
                .doubleValue())
        .as("DoRA magnitude trained")
        .isGreaterThan(1e-4);
  }

  @Test
  void mixedMethodsResumeBitIdentically(@TempDir Path dir) {
    List<AdapterSpec> specs = mix(6);
    Transformer m = data.model(DataType.FLOAT);
    TrainingFixture.Resumed run =
        data.wholeAndResumed(m, specs, dir.resolve("ckpt"), 2, 1, 3, specs.size());
    for (int k = 0; k < specs.size(); k++) {
      LoraWeights whole = run.whole().get(k).weights();
      LoraWeights resumed = run.resumed().get(k).weights();
      assertThat(resumed.trainables()).hasSameSizeAs(whole.trainables());
      assertSameTrainableBits(specs.get(k).id(), whole, resumed);
    }
  }

  /**
   * Trains {@code specs} fused and each alone, in double: every adapter must finish, with weights
   * within 1e-9 relative and eval loss within 1e-9 of its run alone; 1e-9 is far above rounding
   * after a few Adam steps and far below any leak of one adapter into another's rows.
   *
   * @return the fused run's adapters, in spec order
   */
  static List<TrainedAdapter> fusedEqualEachAlone(
      TrainingFixture data, Transformer m, List<AdapterSpec> specs) {
    return data.fusedThenEachAlone(
        m,
        specs,
        (s, fused, alone) -> {
          assertMatchesAlone(s, fused, alone);
          assertThat(fused.outcome().evalLoss())
              .as("adapter %s eval loss", s.id())
              .isCloseTo(alone.outcome().evalLoss(), within(1e-9));
        });
  }

  /**
   * The adapter {@code s} of a fused run finished, and its trained tensors are within 1e-9 relative
   * of the same adapter trained alone (in double, where only a leak between adapters can exceed
   * it).
   */
  static void assertMatchesAlone(AdapterSpec s, TrainedAdapter fused, TrainedAdapter alone) {
    assertThat(fused.outcome().status()).as(s.id()).isEqualTo(AdapterStatus.OK);
    assertThat(maxRelDiff(fused.weights(), alone.weights()))
        .as("adapter %s", s.id())
        .isLessThan(1e-9);
  }

  /** Every trained tensor of {@code actual} has the float bits of {@code expected}'s. */
  static void assertSameTrainableBits(String id, LoraWeights expected, LoraWeights actual) {
    List<LoraWeights.Trainable> a = expected.trainables();
    List<LoraWeights.Trainable> b = actual.trainables();
    for (int i = 0; i < a.size(); i++) {
      assertThat(b.get(i).value().data().asFloat())
          .as("%s %s", id, a.get(i).name())
          .containsExactly(a.get(i).value().data().asFloat());
    }
  }

  /** max |x - y| / max|y| over every trained tensor. */
  static double maxRelDiff(LoraWeights x, LoraWeights y) {
    double worst = 0;
    List<LoraWeights.Trainable> xs = x.trainables();
    List<LoraWeights.Trainable> ys = y.trainables();
    assertThat(xs).hasSameSizeAs(ys);
    for (int i = 0; i < xs.size(); i++) {
      INDArray a = xs.get(i).value();
      INDArray b = ys.get(i).value();
      double scale = Math.max(b.amaxNumber().doubleValue(), 1e-30);
      worst = Math.max(worst, a.sub(b).amaxNumber().doubleValue() / scale);
    }
    return worst;
  }
}
