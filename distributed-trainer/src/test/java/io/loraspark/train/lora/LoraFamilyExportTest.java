package io.loraspark.train.lora;

import static io.loraspark.train.lora.LoraTestModels.bits;
import static io.loraspark.train.lora.LoraTestModels.mean;
import static io.loraspark.train.lora.LoraTestModels.scoringRows;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.train.loop.Evaluator;
import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.safetensors.SafetensorsFile;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * LoRA-FA, DoRA and PiSSA adapters on the real stories260K checkpoint: the PEFT files they save,
 * the round trip back, and scoring with the adapter against scoring the merged dense model.
 */
class LoraFamilyExportTest {
  @TempDir Path tmp;

  static final List<Projection> ALL = List.of(Projection.values());

  /** A DoRA adapter on stories260K with B and the magnitude moved off their init. */
  private static LoraWeights dora(ModelWeights base) {
    LoraWeights w =
        LoraWeights.init(
            base, new LoraConfig(4, 8, 0.0, ALL, false, LoraMethod.DORA), 7, DataType.FLOAT);
    Random rnd = new Random(3);
    for (LoraWeights.Module m : w.modules()) {
      m.b().assign(Nd4j.randn(rnd.nextLong(), m.b().shape()).muli(0.05).castTo(DataType.FLOAT));
      m.state(DoraState.class)
          .magnitude()
          .muli(
              Nd4j.rand(rnd.nextLong(), m.state(DoraState.class).magnitude().shape())
                  .muli(0.4)
                  .addi(0.8)
                  .castTo(DataType.FLOAT));
    }
    return w;
  }

  @Test
  void doraSavesPeftMagnitudeKeysAndLoadsBackBitIdentical() throws IOException {
    ModelWeights base = CheckpointLoader.load(LoraTestModels.STORIES);
    LoraWeights w = dora(base);
    Path dir = tmp.resolve("dora");

    PeftAdapter.save(dir, w, "stories260K");

    JsonNode config = new ObjectMapper().readTree(dir.resolve(PeftAdapter.CONFIG_FILE).toFile());
    assertThat(config.get("use_dora").booleanValue()).as("use_dora").isTrue();
    assertThat(config.get("peft_type").textValue()).isEqualTo("LORA");
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(PeftAdapter.WEIGHTS_FILE))) {
      String q0 = "base_model.model.model.layers.0.self_attn.q_proj.";
      assertThat(f.names())
          .as("PEFT's DoRA state-dict keys")
          .contains(q0 + "lora_A.weight", q0 + "lora_B.weight", q0 + "lora_magnitude_vector")
          .hasSize(3 * w.modules().size());
      assertThat(f.info(q0 + "lora_magnitude_vector").shape())
          .as("magnitude is [out]")
          .containsExactly(base.config().qDim());
    }
    LoraWeights back = PeftAdapter.load(dir, base, DataType.FLOAT);
    assertThat(back.config()).isEqualTo(w.config());
    for (LoraWeights.Module m : w.modules()) {
      LoraWeights.Module r = back.module(m.layer(), m.proj());
      assertThat(bits(r.a())).as("%s A", m.name()).isEqualTo(bits(m.a()));
      assertThat(bits(r.b())).as("%s B", m.name()).isEqualTo(bits(m.b()));
      assertThat(bits(r.state(DoraState.class).magnitude()))
          .as("%s m", m.name())
          .isEqualTo(bits(m.state(DoraState.class).magnitude()));
      assertThat(r.state(DoraState.class).base())
          .as("%s W", m.name())
          .isSameAs(m.state(DoraState.class).base());
    }
    assertThat(back.parameterCount())
        .as("trainable parameters: r(in + out) + out per module")
        .isEqualTo(w.parameterCount());
    assertThatThrownBy(() -> PeftAdapter.load(dir, base.config(), DataType.FLOAT))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("dora adapter")
        .hasMessageContaining("base weights");
  }

  @Test
  void loraFaSavesAsPlainLoraWithFrozenA() throws IOException {
    ModelWeights base = CheckpointLoader.load(LoraTestModels.STORIES);
    LoraConfig fa = new LoraConfig(4, 8, 0.0, ALL, false, LoraMethod.LORA_FA);
    LoraWeights w = LoraTestModels.adapter(base.config(), fa, 9);
    long expected = 0;
    for (LoraWeights.Module m : w.modules()) {
      expected += m.b().length();
    }
    assertThat(w.parameterCount()).as("only B trains").isEqualTo(expected);
    Path dir = tmp.resolve("fa");

    PeftAdapter.save(dir, w, null);

    LoraWeights back = PeftAdapter.load(dir, base.config(), DataType.FLOAT);
    assertThat(back.config()).as("a plain LoRA adapter").isEqualTo(fa.withMethod(LoraMethod.LORA));
    for (LoraWeights.Module m : w.modules()) {
      LoraWeights.Module r = back.module(m.layer(), m.proj());
      assertThat(bits(r.a())).as("%s A", m.name()).isEqualTo(bits(m.a()));
      assertThat(bits(r.b())).as("%s B", m.name()).isEqualTo(bits(m.b()));
    }
    LoraWeights into = LoraWeights.zeros(base.config(), fa, DataType.FLOAT);
    PeftAdapter.loadInto(dir, into);
    assertThat(bits(into.modules().iterator().next().a()))
        .as("a LoRA-FA adapter resumes from its plain LoRA save")
        .isEqualTo(bits(w.modules().iterator().next().a()));
  }

  /**
   * A PiSSA adapter saves as PEFT's rank-2r conversion for the original base: a plain LoRA with A'
   * = [A; A₀], B' = [B, −B₀] and the same scaling, which scores like the PiSSA branch and like the
   * merged model, and which a PiSSA adapter resumes from bit-identically.
   */
  @Test
  void pissaSavesAsConvertedRank2rLoraThatScoresTheSame() {
    ModelWeights base = CheckpointLoader.load(LoraTestModels.STORIES);
    LoraConfig cfg = new LoraConfig(4, 8, 0.0, ALL, false, LoraMethod.PISSA);
    LoraWeights w = LoraWeights.init(base, cfg, 7, DataType.FLOAT);
    Random rnd = new Random(4);
    for (LoraWeights.Module m : w.modules()) {
      m.a().addi(Nd4j.randn(rnd.nextLong(), m.a().shape()).muli(0.05).castTo(DataType.FLOAT));
      m.b().addi(Nd4j.randn(rnd.nextLong(), m.b().shape()).muli(0.05).castTo(DataType.FLOAT));
    }
    Path dir = tmp.resolve("pissa");

    PeftAdapter.save(dir, w, "stories260K");

    LoraWeights plain = PeftAdapter.load(dir, base.config(), DataType.FLOAT);
    assertThat(plain.config())
        .as("rank 2r, alpha 2·alpha, plain LoRA")
        .isEqualTo(new LoraConfig(8, 16, 0.0, ALL, false));
    LoraWeights.Module q = w.modules().iterator().next();
    LoraWeights.Module pq = plain.modules().iterator().next();
    assertThat(bits(pq.a().get(NDArrayIndex.interval(4, 8), NDArrayIndex.all())))
        .as("A' lower half is A₀")
        .isEqualTo(bits(q.state(PissaState.class).a0()));
    assertThat(bits(pq.b().get(NDArrayIndex.all(), NDArrayIndex.interval(4, 8))))
        .as("B' right half is −B₀")
        .isEqualTo(bits(q.state(PissaState.class).b0().neg()));
    List<TokenRow> rows = scoringRows(base.config().vocabSize());
    Transformer model = new Transformer(base);
    double branch = mean(Evaluator.score(model, FusedLora.inference(w), rows, 4, 0));
    double converted = mean(Evaluator.score(model, FusedLora.inference(plain), rows, 4, 0));
    double merged =
        mean(
            Evaluator.score(new Transformer(LoraMerge.merged(base, w)), Adapters.NONE, rows, 4, 0));
    double bare = mean(Evaluator.score(model, Adapters.NONE, rows, 4, 0));
    assertThat(converted).as("converted export vs PiSSA branch").isCloseTo(branch, within(1e-4));
    assertThat(merged).as("merged model vs PiSSA branch").isCloseTo(branch, within(1e-4));
    assertThat(Math.abs(branch - bare)).as("the adapter changes the model").isGreaterThan(1e-3);

    LoraWeights resumed = LoraWeights.zeros(base, cfg, DataType.FLOAT);
    PeftAdapter.loadInto(dir, resumed);
    for (LoraWeights.Module m : w.modules()) {
      LoraWeights.Module r = resumed.module(m.layer(), m.proj());
      assertThat(bits(r.a())).as("%s A", m.name()).isEqualTo(bits(m.a()));
      assertThat(bits(r.b())).as("%s B", m.name()).isEqualTo(bits(m.b()));
      assertThat(bits(r.state(PissaState.class).a0()))
          .as("%s A0", m.name())
          .isEqualTo(bits(m.state(PissaState.class).a0()));
      assertThat(bits(r.state(PissaState.class).b0()))
          .as("%s B0", m.name())
          .isEqualTo(bits(m.state(PissaState.class).b0()));
    }
  }

  /**
   * Scoring with the DoRA branch and scoring the dense model with W' = m ⊙ (W + sBA)/‖W + sBA‖
   * folded in must agree: both are F32, so the tolerance is float rounding on a 512-token vocab.
   */
  @Test
  void doraScoresLikeTheMergedDenseModel() {
    ModelWeights base = CheckpointLoader.load(LoraTestModels.STORIES);
    LoraWeights w = dora(base);
    List<TokenRow> rows = scoringRows(base.config().vocabSize());

    LossStats withAdapter =
        Evaluator.score(new Transformer(base), FusedLora.inference(w), rows, 4, 0);
    LossStats merged =
        Evaluator.score(new Transformer(LoraMerge.merged(base, w)), Adapters.NONE, rows, 4, 0);
    LossStats bare = Evaluator.score(new Transformer(base), Adapters.NONE, rows, 4, 0);

    double adapted = withAdapter.totalNll() / withAdapter.totalCount();
    double dense = merged.totalNll() / merged.totalCount();
    assertThat(adapted).as("adapter branch vs merged model").isCloseTo(dense, within(1e-4));
    assertThat(Math.abs(adapted - bare.totalNll() / bare.totalCount()))
        .as("the adapter changes the model")
        .isGreaterThan(1e-2);
  }

  private static org.assertj.core.data.Offset<Double> within(double d) {
    return org.assertj.core.data.Offset.offset(d);
  }
}
