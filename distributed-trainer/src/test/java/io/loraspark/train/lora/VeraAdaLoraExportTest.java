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
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.safetensors.SafetensorsFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * VeRA and AdaLoRA adapters on the real stories260K checkpoint: the PEFT files they save (keys,
 * shapes, adapter_config.json), the round trip back, and scoring the loaded adapter against scoring
 * the merged dense model (both F32, so within 1e-4 on the 512-token vocabulary).
 */
class VeraAdaLoraExportTest {
  @TempDir Path tmp;

  static final List<Projection> ALL = List.of(Projection.values());
  static final String Q0 = "base_model.model.model.layers.0.self_attn.q_proj.";

  @Test
  void veraSavesPeftKeysLoadsBackBitIdenticalAndScoresLikeMerged() throws IOException {
    ModelWeights base = CheckpointLoader.load(LoraTestModels.STORIES);
    LoraConfig cfg = new LoraConfig(16, 32, 0.0, ALL, false, LoraMethod.VERA);
    LoraWeights w = LoraWeights.init(base, cfg, 7, DataType.FLOAT);
    Random rnd = new Random(3);
    for (LoraWeights.Module m : w.modules()) {
      m.state(VeraState.class)
          .lambdaD()
          .addi(VeraAdaLoraGradientTest.randn(rnd, m.state(VeraState.class).lambdaD(), 0.5));
      m.state(VeraState.class)
          .lambdaB()
          .assign(VeraAdaLoraGradientTest.randn(rnd, m.state(VeraState.class).lambdaB(), 0.5));
    }
    Path dir = tmp.resolve("vera");

    PeftAdapter.save(dir, w, "stories260K");

    JsonNode config = new ObjectMapper().readTree(dir.resolve(PeftAdapter.CONFIG_FILE).toFile());
    assertThat(config.get("peft_type").textValue()).isEqualTo("VERA");
    assertThat(config.get("r").intValue()).isEqualTo(16);
    assertThat(config.get("save_projection").booleanValue()).isTrue();
    assertThat(config.get("d_initial").doubleValue()).isEqualTo(0.1);
    assertThat(config.get("vera_dropout").doubleValue()).isEqualTo(0.0);
    assertThat(config.has("projection_prng_key")).isTrue();
    assertThat(config.has("lora_alpha")).as("VeRA has no alpha").isFalse();
    int c = base.config().hiddenSize();
    int f = base.config().intermediateSize();
    try (SafetensorsFile file = SafetensorsFile.open(dir.resolve(PeftAdapter.WEIGHTS_FILE))) {
      assertThat(file.names())
          .as("PEFT's VeRA state-dict keys")
          .contains(
              Q0 + "vera_lambda_b", Q0 + "vera_lambda_d", "base_model.vera_A", "base_model.vera_B")
          .hasSize(2 * w.modules().size() + 2);
      assertThat(file.info(Q0 + "vera_lambda_b").shape()).containsExactly(base.config().qDim());
      assertThat(file.info(Q0 + "vera_lambda_d").shape()).containsExactly(16);
      assertThat(file.info("base_model.vera_A").shape()).as("[r, in_max]").containsExactly(16, f);
      assertThat(file.info("base_model.vera_B").shape())
          .as("[out_max, r]")
          .containsExactly(Math.max(f, c), 16);
    }

    LoraWeights back = PeftAdapter.load(dir, base.config(), DataType.FLOAT);
    assertThat(back.config()).isEqualTo(new LoraConfig(16, 16, 0.0, ALL, false, LoraMethod.VERA));
    for (String s : List.of("vera_A", "vera_B")) {
      assertThat(bits(back.shared().get(s))).as(s).isEqualTo(bits(w.shared().get(s)));
    }
    for (LoraWeights.Module m : w.modules()) {
      LoraWeights.Module r = back.module(m.layer(), m.proj());
      assertThat(bits(r.state(VeraState.class).lambdaD()))
          .as("%s λ_d", m.name())
          .isEqualTo(bits(m.state(VeraState.class).lambdaD()));
      assertThat(bits(r.state(VeraState.class).lambdaB()))
          .as("%s λ_b", m.name())
          .isEqualTo(bits(m.state(VeraState.class).lambdaB()));
      assertThat(bits(r.a())).as("%s A view", m.name()).isEqualTo(bits(m.a()));
    }
    assertThat(back.parameterCount()).isEqualTo(w.parameterCount());
    LoraWeights resumed = LoraWeights.zeros(base.config(), cfg, DataType.FLOAT);
    PeftAdapter.loadInto(dir, resumed);
    assertThat(bits(resumed.shared().get("vera_B"))).isEqualTo(bits(w.shared().get("vera_B")));

    assertScoresLikeMerged(base, w, back);
  }

  @Test
  void veraWithoutSavedProjectionsIsRefusedNamingTheKey() throws IOException {
    ModelWeights base = CheckpointLoader.load(LoraTestModels.STORIES);
    LoraWeights w =
        LoraWeights.init(
            base, new LoraConfig(4, 4, 0.0, ALL, false, LoraMethod.VERA), 1, DataType.FLOAT);
    Path dir = tmp.resolve("vera-noproj");
    PeftAdapter.save(dir, w, null);
    Path cfg = dir.resolve(PeftAdapter.CONFIG_FILE);
    Files.writeString(
        cfg,
        Files.readString(cfg).replace("\"save_projection\": true", "\"save_projection\": false"));
    assertThatThrownBy(() -> PeftAdapter.load(dir, base.config(), DataType.FLOAT))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("save_projection")
        .hasMessageContaining("projection_prng_key");
  }

  /**
   * An AdaLoRA adapter masked to its target budget saves PEFT's truncated tensors (k kept ranks per
   * module, keys without ".weight") with rank_pattern and total_step, loads back with the kept
   * ranks in place and the masked ones zero, and scores like the merged model.
   */
  @Test
  void adaLoraSavesTruncatedRankPatternLoadsBackAndScoresLikeMerged() throws IOException {
    ModelWeights base = CheckpointLoader.load(LoraTestModels.STORIES);
    LoraConfig cfg = new LoraConfig(4, 8, 0.0, ALL, false, LoraMethod.ADALORA);
    LoraWeights w = LoraWeights.init(base, cfg, 7, DataType.FLOAT);
    Random rnd = new Random(4);
    for (LoraWeights.Module m : w.modules()) {
      m.state(AdaLoraState.class)
          .e()
          .assign(VeraAdaLoraGradientTest.randn(rnd, m.state(AdaLoraState.class).e(), 3.0));
      m.a().addi(VeraAdaLoraGradientTest.randn(rnd, m.a(), 0.1));
      m.b().addi(VeraAdaLoraGradientTest.randn(rnd, m.b(), 0.1));
    }
    for (LoraWeights.Trainable t : w.trainables()) {
      t.grad().assign(VeraAdaLoraGradientTest.randn(rnd, t.grad(), 1.0));
    }
    w.allocator().updateAndAllocate(w, 9, 10); // PEFT defaults: the last step masks to the target
    Path dir = tmp.resolve("adalora");

    PeftAdapter.save(dir, w, "stories260K");

    JsonNode config = new ObjectMapper().readTree(dir.resolve(PeftAdapter.CONFIG_FILE).toFile());
    assertThat(config.get("peft_type").textValue()).isEqualTo("ADALORA");
    assertThat(config.get("target_r").intValue()).isEqualTo(4);
    assertThat(config.get("init_r").intValue()).isEqualTo(6);
    assertThat(config.get("total_step").intValue()).isEqualTo(10);
    assertThat(config.get("orth_reg_weight").doubleValue()).isEqualTo(0.5);
    assertThat(config.get("lora_alpha").intValue()).isEqualTo(8);
    JsonNode pattern = config.get("rank_pattern");
    assertThat(pattern.size()).isEqualTo(w.modules().size());
    int keptTotal = 0;
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(PeftAdapter.WEIGHTS_FILE))) {
      assertThat(f.names()).hasSize(3 * w.modules().size());
      for (LoraWeights.Module m : w.modules()) {
        JsonNode kept = pattern.get(m.name() + ".lora_E");
        assertThat(kept).as("rank_pattern entry of %s", m.name()).isNotNull();
        assertThat(kept.size()).isEqualTo(6);
        int k = 0;
        for (JsonNode b : kept) {
          k += b.booleanValue() ? 1 : 0;
        }
        keptTotal += k;
        String p = "base_model.model." + m.name() + ".";
        assertThat(f.info(p + "lora_A").shape()).containsExactly(k, m.a().columns());
        assertThat(f.info(p + "lora_E").shape()).containsExactly(k, 1);
        assertThat(f.info(p + "lora_B").shape()).containsExactly(m.b().rows(), k);
      }
    }
    assertThat(keptTotal).as("target_r · modules").isEqualTo(4 * w.modules().size());

    LoraWeights back = PeftAdapter.load(dir, base.config(), DataType.FLOAT);
    assertThat(back.config()).isEqualTo(cfg);
    for (LoraWeights.Module m : w.modules()) {
      LoraWeights.Module r = back.module(m.layer(), m.proj());
      boolean[] kept = w.allocator().kept(m.name());
      assertThat(back.allocator().kept(m.name())).isEqualTo(kept);
      for (int i = 0; i < kept.length; i++) {
        INDArray wantA = kept[i] ? m.a().getRow(i) : Nd4j.zeros(DataType.FLOAT, m.a().columns());
        assertThat(bits(r.a().getRow(i))).as("%s A row %d", m.name(), i).isEqualTo(bits(wantA));
        assertThat(r.state(AdaLoraState.class).e().getFloat(i, 0))
            .as("%s E[%d]", m.name(), i)
            .isEqualTo(m.state(AdaLoraState.class).e().getFloat(i, 0));
      }
    }
    assertThat(back.allocator().totalSteps()).isEqualTo(10);

    assertScoresLikeMerged(base, w, back);
  }

  /** The loaded adapter's branch, the in-memory one and the merged dense model score alike. */
  private static void assertScoresLikeMerged(ModelWeights base, LoraWeights w, LoraWeights loaded) {
    List<TokenRow> rows = scoringRows(base.config().vocabSize());
    Transformer model = new Transformer(base);
    double adapter = mean(Evaluator.score(model, FusedLora.inference(loaded), rows, 4, 0));
    double inMemory = mean(Evaluator.score(model, FusedLora.inference(w), rows, 4, 0));
    double merged =
        mean(
            Evaluator.score(
                new Transformer(LoraMerge.merged(base, loaded)), Adapters.NONE, rows, 4, 0));
    double bare = mean(Evaluator.score(model, Adapters.NONE, rows, 4, 0));
    assertThat(adapter).as("loaded adapter vs merged model").isCloseTo(merged, Offset.offset(1e-4));
    assertThat(adapter).as("loaded vs in-memory adapter").isCloseTo(inMemory, Offset.offset(1e-6));
    assertThat(Math.abs(adapter - bare)).as("the adapter changes the model").isGreaterThan(1e-3);
  }
}
