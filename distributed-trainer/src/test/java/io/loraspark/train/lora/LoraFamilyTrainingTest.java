package io.loraspark.train.lora;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.loop.FusedTrainer;
import io.loraspark.train.loop.TrainConfig;
import io.loraspark.train.loop.TrainedAdapter;
import io.loraspark.train.model.Batch;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TestModels;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.optim.LrSchedule;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Plain LoRA, LoRA-FA, DoRA and PiSSA adapters trained together in one fused step against each
 * trained alone, and a checkpointed run of the mix resumed bit-identically, on a small random
 * Llama.
 */
class LoraFamilyTrainingTest {
  @TempDir static Path shared;
  static Path modelDir;
  static List<TokenRow> train;
  static List<TokenRow> eval;

  @BeforeAll
  static void setUp() {
    modelDir =
        TestModels.writeRandom(
            shared.resolve("model"), TestModels.config("LlamaForCausalLM", false, true), 7);
    train = rows(30, 11);
    eval = rows(6, 12);
  }

  static List<TokenRow> rows(int n, long seed) {
    Random rnd = new Random(seed);
    List<TokenRow> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int len = 5 + rnd.nextInt(10);
      int[] ids = new int[len];
      int[] labels = new int[len];
      for (int t = 0; t < len; t++) {
        ids[t] = 1 + rnd.nextInt(36);
        labels[t] = t < len / 3 ? Batch.IGNORE : ids[t];
      }
      out.add(new TokenRow(ids, labels));
    }
    return out;
  }

  static AdapterSpec spec(String id, LoraMethod method, int rank, double dropout, int steps) {
    List<Projection> targets =
        rank == 1 ? List.of(Projection.Q, Projection.V) : List.of(Projection.values());
    return new AdapterSpec(
        id,
        new LoraConfig(rank, 2.0 * rank, dropout, targets, false, method),
        new TrainConfig(
            steps, 2, 1, 1e-2, 4.0, 0.01, 1, LrSchedule.Kind.COSINE, 1.0, 0, id.hashCode()));
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
    Transformer m = new Transformer(CheckpointLoader.load(modelDir, DataType.DOUBLE));
    List<TrainedAdapter> fused = new FusedTrainer(m, mix(4), train, eval, 0).run(x -> {});
    for (int k = 0; k < fused.size(); k++) {
      AdapterSpec s = mix(4).get(k);
      TrainedAdapter alone = new FusedTrainer(m, List.of(s), train, eval, 0).run(x -> {}).get(0);
      assertThat(fused.get(k).status()).as(s.id()).isEqualTo("ok");
      assertThat(maxRelDiff(fused.get(k).weights(), alone.weights()))
          .as("adapter %s", s.id())
          .isLessThan(1e-9);
      assertThat(fused.get(k).evalLoss())
          .as("adapter %s eval loss", s.id())
          .isCloseTo(alone.evalLoss(), org.assertj.core.data.Offset.offset(1e-9));
    }
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
            d0.magnitude()
                .sub(doraInit.modules().iterator().next().magnitude())
                .amaxNumber()
                .doubleValue())
        .as("DoRA magnitude trained")
        .isGreaterThan(1e-4);
  }

  @Test
  void mixedMethodsResumeBitIdentically(@TempDir Path dir) {
    Transformer m = new Transformer(CheckpointLoader.load(modelDir, DataType.FLOAT));
    List<AdapterSpec> specs = mix(6);
    List<TrainedAdapter> whole = new FusedTrainer(m, specs, train, eval, 0).run(x -> {});

    Path ckpt = dir.resolve("ckpt");
    FusedTrainer first = new FusedTrainer(m, specs, train, eval, 0).checkpointing(ckpt, 2, 1);
    assertThatThrownBy(
            () ->
                first.run(
                    x -> {
                      if (x.step() == 3) {
                        throw new IllegalStateException("killed");
                      }
                    }))
        .hasMessage("killed");
    FusedTrainer second = new FusedTrainer(m, specs, train, eval, 0).checkpointing(ckpt, 2, 1);
    assertThat(second.resume()).isEqualTo(specs.size());
    List<TrainedAdapter> resumed = second.run(x -> {});
    for (int k = 0; k < specs.size(); k++) {
      List<LoraWeights.Trainable> a = whole.get(k).weights().trainables();
      List<LoraWeights.Trainable> b = resumed.get(k).weights().trainables();
      assertThat(b).hasSameSizeAs(a);
      for (int i = 0; i < a.size(); i++) {
        assertThat(b.get(i).value().data().asFloat())
            .as("%s %s", specs.get(k).id(), a.get(i).name())
            .containsExactly(a.get(i).value().data().asFloat());
      }
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
