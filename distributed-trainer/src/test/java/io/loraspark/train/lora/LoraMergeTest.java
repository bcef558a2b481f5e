package io.loraspark.train.lora;

import static io.loraspark.train.lora.LoraTestModels.bits;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.LayerWeights;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.safetensors.SafetensorsFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Merging an adapter into its base and writing the result as a Hugging Face checkpoint. */
class LoraMergeTest {

  static final List<Projection> QVD = List.of(Projection.Q, Projection.V, Projection.DOWN);

  /** Getter of each projection's weight in a layer. */
  static final Map<Projection, Function<LayerWeights, INDArray>> WEIGHT =
      Map.of(
          Projection.Q, LayerWeights::wq,
          Projection.K, LayerWeights::wk,
          Projection.V, LayerWeights::wv,
          Projection.O, LayerWeights::wo,
          Projection.GATE, LayerWeights::wGate,
          Projection.UP, LayerWeights::wUp,
          Projection.DOWN, LayerWeights::wDown);

  @TempDir Path tmp;

  @Test
  void mergedStoriesCheckpointHoldsWPlusScaledBaAndUntouchedRest() throws IOException {
    ModelWeights base = CheckpointLoader.load(LoraTestModels.STORIES);
    LoraWeights adapter = LoraTestModels.adapter(base.config(), LoraTestModels.lora(4, 8, QVD), 5);
    int[] baseQ0 = bits(base.layers().get(0).wq());
    Path out = tmp.resolve("merged");

    LoraMerge.writeCheckpoint(LoraMerge.merged(base, adapter), LoraTestModels.STORIES, out);
    ModelWeights back = CheckpointLoader.load(out);

    assertThat(bits(base.layers().get(0).wq())).as("base q_proj not mutated").isEqualTo(baseQ0);
    assertMergedWeights(base, back, adapter);
    assertThat(bits(back.embed())).as("embed_tokens").isEqualTo(bits(base.embed()));
    assertThat(bits(back.finalNorm())).as("model.norm").isEqualTo(bits(base.finalNorm()));
    for (int l = 0; l < base.config().numLayers(); l++) {
      LayerWeights b = base.layers().get(l);
      LayerWeights r = back.layers().get(l);
      assertThat(bits(r.inputNorm())).as("input_layernorm %d", l).isEqualTo(bits(b.inputNorm()));
      assertThat(bits(r.postNorm()))
          .as("post_attention_layernorm %d", l)
          .isEqualTo(bits(b.postNorm()));
    }
    try (SafetensorsFile f = SafetensorsFile.open(out.resolve("model.safetensors"))) {
      assertThat(f.names()).as("tied model: no lm_head.weight").doesNotContain("lm_head.weight");
      assertThat(f.metadata()).as("metadata").isEqualTo(Map.of("format", "pt"));
    }
    for (String name :
        List.of(
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "tokenizer.model",
            "generation_config.json")) {
      assertThat(Files.readAllBytes(out.resolve(name)))
          .as("%s copied unchanged", name)
          .isEqualTo(Files.readAllBytes(LoraTestModels.STORIES.resolve(name)));
    }
    assertThat(out.resolve("special_tokens_map.json"))
        .as("absent in base, absent here")
        .doesNotExist();
  }

  @Test
  void untiedModelWithBiasesKeepsHeadAndBiasesBitIdentical() throws IOException {
    Path baseDir =
        LoraTestModels.writeRandomCheckpoint(
            tmp.resolve("base"), LoraTestModels.configJson("Qwen2ForCausalLM", false, false), 3);
    ModelWeights base = CheckpointLoader.load(baseDir);
    LoraWeights adapter =
        LoraTestModels.adapter(
            base.config(), new LoraConfig(2, 3, 0, List.of(Projection.values()), true), 9);
    Path out = tmp.resolve("merged");

    LoraMerge.writeCheckpoint(LoraMerge.merged(base, adapter), baseDir, out);
    ModelWeights back = CheckpointLoader.load(out);

    assertMergedWeights(base, back, adapter);
    assertThat(bits(back.lmHead())).as("untied lm_head").isEqualTo(bits(base.lmHead()));
    for (int l = 0; l < base.config().numLayers(); l++) {
      LayerWeights b = base.layers().get(l);
      LayerWeights r = back.layers().get(l);
      assertThat(bits(r.bq())).as("q bias %d", l).isEqualTo(bits(b.bq()));
      assertThat(bits(r.bk())).as("k bias %d", l).isEqualTo(bits(b.bk()));
      assertThat(bits(r.bv())).as("v bias %d", l).isEqualTo(bits(b.bv()));
    }
    try (SafetensorsFile f = SafetensorsFile.open(out.resolve("model.safetensors"))) {
      assertThat(f.names()).as("untied model keeps lm_head.weight").contains("lm_head.weight");
    }
  }

  @Test
  void mergedSharesUntargetedArraysAndKeepsTiedHead() {
    ModelWeights base = CheckpointLoader.load(LoraTestModels.STORIES);
    LoraWeights adapter = LoraTestModels.adapter(base.config(), LoraTestModels.lora(2, 2, QVD), 1);

    ModelWeights merged = LoraMerge.merged(base, adapter);

    assertThat(merged.lmHead()).as("tied head is still the embedding").isSameAs(merged.embed());
    assertThat(merged.layers().get(0).wk())
        .as("untargeted k_proj shared")
        .isSameAs(base.layers().get(0).wk());
    assertThat(merged.layers().get(0).wq())
        .as("targeted q_proj is a new array")
        .isNotSameAs(base.layers().get(0).wq());
  }

  @Test
  void adapterForAnotherModelIsRefused() {
    ModelWeights base = CheckpointLoader.load(LoraTestModels.STORIES);
    LoraWeights adapter =
        LoraTestModels.adapter(LoraTestModels.smallLlama(), LoraTestModels.lora(2, 2, QVD), 1);

    assertThatThrownBy(() -> LoraMerge.merged(base, adapter))
        .as("2-layer adapter on the 5-layer stories model")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("2 layers")
        .hasMessageContaining("has 5");
  }

  @Test
  void checkpointWhoseConfigDiffersFromTheWeightsIsRefused() throws IOException {
    Path other =
        LoraTestModels.writeRandomCheckpoint(
            tmp.resolve("other"), LoraTestModels.configJson("LlamaForCausalLM", true, false), 1);
    ModelWeights stories = CheckpointLoader.load(LoraTestModels.STORIES);

    assertThatThrownBy(() -> LoraMerge.writeCheckpoint(stories, other, tmp.resolve("out")))
        .as("weights from stories, config from another model")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(other.resolve("config.json").toString());
  }

  @Test
  void writingOverTheBaseCheckpointIsRefused() throws IOException {
    Path baseDir =
        LoraTestModels.writeRandomCheckpoint(
            tmp.resolve("base"), LoraTestModels.configJson("LlamaForCausalLM", true, false), 1);
    ModelWeights base = CheckpointLoader.load(baseDir);

    assertThatThrownBy(() -> LoraMerge.writeCheckpoint(base, baseDir, baseDir))
        .as("outDir == baseDir")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("is the base checkpoint itself");
  }

  /** Every targeted W in {@code back} equals W + s·B·A from a naive double loop, within 1e-6. */
  private static void assertMergedWeights(ModelWeights base, ModelWeights back, LoraWeights w) {
    double s = w.config().scaling();
    for (int l = 0; l < base.config().numLayers(); l++) {
      for (Projection p : Projection.values()) {
        INDArray baseW = WEIGHT.get(p).apply(base.layers().get(l));
        INDArray gotW = WEIGHT.get(p).apply(back.layers().get(l));
        LoraWeights.Module m = w.module(l, p);
        if (m == null) {
          assertThat(bits(gotW))
              .as("untargeted %s bit-identical", p.hfModule(l))
              .isEqualTo(bits(baseW));
          continue;
        }
        double[][] want =
            naiveMerge(baseW.toDoubleMatrix(), m.b().toDoubleMatrix(), m.a().toDoubleMatrix(), s);
        double[][] got = gotW.toDoubleMatrix();
        double maxErr = 0;
        double maxDelta = 0;
        for (int i = 0; i < want.length; i++) {
          for (int j = 0; j < want[i].length; j++) {
            maxErr = Math.max(maxErr, Math.abs(got[i][j] - want[i][j]));
            maxDelta = Math.max(maxDelta, Math.abs(want[i][j] - baseW.getDouble(i, j)));
          }
        }
        assertThat(maxErr).as("max |merged - (W + s·B·A)| of %s", m.name()).isLessThan(1e-6);
        assertThat(maxDelta).as("the adapter changes %s noticeably", m.name()).isGreaterThan(1e-4);
      }
    }
  }

  private static double[][] naiveMerge(double[][] w, double[][] b, double[][] a, double s) {
    double[][] out = new double[w.length][w[0].length];
    for (int i = 0; i < w.length; i++) {
      for (int j = 0; j < w[0].length; j++) {
        double sum = 0;
        for (int k = 0; k < a.length; k++) {
          sum += b[i][k] * a[k][j];
        }
        out[i][j] = w[i][j] + s * sum;
      }
    }
    return out;
  }
}
