package io.loraspark.train.lora;

import io.loraspark.train.io.AtomicFiles;
import io.loraspark.train.model.LayerWeights;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.safetensors.SafetensorsCheckpoint;
import io.loraspark.train.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Folds a LoRA-family adapter into its base model ({@code W' = W + s·B·A}, or the method's {@link
 * LoraVariant#merged}) and writes the result as a plain Hugging Face checkpoint that needs no
 * adapter support to load.
 */
public final class LoraMerge {

  /**
   * Files copied unchanged from the base checkpoint when present, in copy order (config.json, which
   * the base must have, last).
   */
  public static final List<String> COPIED_FILES =
      List.of(
          "tokenizer.json",
          "tokenizer_config.json",
          "tokenizer.model",
          "special_tokens_map.json",
          "generation_config.json",
          "chat_template.jinja",
          "config.json");

  private LoraMerge() {}

  /**
   * New weights with every projection {@code w} targets replaced by {@code W + s·B·A} (or its
   * method's merged weight), s = {@code w.scaling(module)}, computed in double and rounded once to
   * W's type. {@code base} is not modified; untargeted arrays are shared with it (so a tied head
   * stays the embedding array).
   *
   * @throws IllegalArgumentException naming the module if the adapter was made for a model with a
   *     different layer count or projection shapes
   */
  public static ModelWeights merged(ModelWeights base, LoraWeights w) {
    ModelConfig c = base.config();
    if (w.model().numLayers() != c.numLayers()) {
      throw new IllegalArgumentException(
          "the adapter was made for "
              + w.model().numLayers()
              + " layers but the base model has "
              + c.numLayers());
    }
    List<LayerWeights> layers = new ArrayList<>(c.numLayers());
    for (int l = 0; l < c.numLayers(); l++) {
      LayerWeights b = base.layers().get(l);
      layers.add(
          new LayerWeights(
              b.inputNorm(),
              fold(b.wq(), w, l, Projection.Q),
              b.bq(),
              fold(b.wk(), w, l, Projection.K),
              b.bk(),
              fold(b.wv(), w, l, Projection.V),
              b.bv(),
              fold(b.wo(), w, l, Projection.O),
              b.bo(),
              b.postNorm(),
              fold(b.wGate(), w, l, Projection.GATE),
              fold(b.wUp(), w, l, Projection.UP),
              fold(b.wDown(), w, l, Projection.DOWN),
              b.bGate(),
              b.bUp(),
              b.bDown()));
    }
    return new ModelWeights(c, base.embed(), layers, base.finalNorm(), base.lmHead());
  }

  /**
   * The method's merged weight ({@code weight + s·B·A} for LoRA and LoRA-FA, DoRA's {@code m ⊙ (W +
   * s·B·A) / ‖W + s·B·A‖}, VeRA's {@code W + diag(λ_b)·B·diag(λ_d)·A}, AdaLoRA's {@code W +
   * s·B·diag(E)·A}) as a new array, or {@code weight} itself when not targeted.
   */
  private static INDArray fold(INDArray weight, LoraWeights w, int layer, Projection p) {
    LoraWeights.Module m = w.module(layer, p);
    if (m == null) {
      return weight;
    }
    long[] want = {m.b().rows(), m.a().columns()};
    if (!Arrays.equals(weight.shape(), want)) {
      throw new IllegalArgumentException(
          "adapter module "
              + m.name()
              + " has B "
              + Arrays.toString(m.b().shape())
              + " and A "
              + Arrays.toString(m.a().shape())
              + " but the base weight is "
              + Arrays.toString(weight.shape()));
    }
    INDArray merged =
        w.variant().merged(m, w.scaling(m), weight.castTo(DataType.DOUBLE)); // [out, in]
    return merged.castTo(weight.dataType());
  }

  /**
   * Writes {@code weights} as a Hugging Face checkpoint in {@code outDir} (created if needed):
   * {@code model.safetensors} (F32, {"format":"pt"}, standard key names; lm_head.weight only when
   * the config is untied) and copies of {@link #COPIED_FILES} present in {@code baseDir}. Every
   * file is replaced atomically; config.json is written last. The result loads with {@code
   * CheckpointLoader.load(outDir)}.
   *
   * @param baseDir the checkpoint the weights came from; its config.json must describe them
   * @throws IllegalArgumentException if baseDir's config differs from {@code weights.config()}, if
   *     outDir is baseDir, or if outDir holds a shard index that would shadow the new file
   * @throws UncheckedIOException naming the path on an I/O failure
   */
  public static void writeCheckpoint(ModelWeights weights, Path baseDir, Path outDir) {
    ModelConfig baseConfig = ModelConfig.load(baseDir);
    if (!baseConfig.equals(weights.config())) {
      throw new IllegalArgumentException(
          baseDir.resolve("config.json")
              + " describes "
              + baseConfig
              + " but the weights are for "
              + weights.config()
              + "; pass the checkpoint the weights were loaded from");
    }
    AtomicFiles.createDirectories(outDir);
    if (sameDirectory(baseDir, outDir)) {
      throw new IllegalArgumentException(
          outDir + " is the base checkpoint itself; write the merged model to another directory");
    }
    Path index = outDir.resolve(SafetensorsCheckpoint.INDEX_FILE);
    if (Files.exists(index)) {
      throw new IllegalArgumentException(
          index + " exists from another checkpoint; write the merged model to an empty directory");
    }
    SafetensorsWriter.write(
        outDir.resolve(SafetensorsCheckpoint.SINGLE_FILE),
        tensors(weights),
        Map.of("format", "pt"));
    for (String name : COPIED_FILES) {
      Path source = baseDir.resolve(name);
      if (Files.isRegularFile(source)) {
        AtomicFiles.copy(source, outDir.resolve(name));
      }
    }
  }

  private static boolean sameDirectory(Path a, Path b) {
    try {
      return Files.isSameFile(a, b);
    } catch (IOException e) {
      throw new UncheckedIOException(a + " / " + b + ": cannot compare directories: " + e, e);
    }
  }

  /** Every tensor under its Hugging Face name, embeddings first, layers in order, head last. */
  static Map<String, SafetensorsWriter.Tensor> tensors(ModelWeights weights) {
    Map<String, SafetensorsWriter.Tensor> t = new LinkedHashMap<>();
    put(t, "model.embed_tokens.weight", weights.embed());
    for (int l = 0; l < weights.layers().size(); l++) {
      LayerWeights w = weights.layers().get(l);
      String p = "model.layers." + l + ".";
      put(t, p + "input_layernorm.weight", w.inputNorm());
      put(t, p + "self_attn.q_proj.weight", w.wq());
      put(t, p + "self_attn.q_proj.bias", w.bq());
      put(t, p + "self_attn.k_proj.weight", w.wk());
      put(t, p + "self_attn.k_proj.bias", w.bk());
      put(t, p + "self_attn.v_proj.weight", w.wv());
      put(t, p + "self_attn.v_proj.bias", w.bv());
      put(t, p + "self_attn.o_proj.weight", w.wo());
      put(t, p + "self_attn.o_proj.bias", w.bo());
      put(t, p + "post_attention_layernorm.weight", w.postNorm());
      put(t, p + "mlp.gate_proj.weight", w.wGate());
      put(t, p + "mlp.gate_proj.bias", w.bGate());
      put(t, p + "mlp.up_proj.weight", w.wUp());
      put(t, p + "mlp.up_proj.bias", w.bUp());
      put(t, p + "mlp.down_proj.weight", w.wDown());
      put(t, p + "mlp.down_proj.bias", w.bDown());
    }
    put(t, "model.norm.weight", weights.finalNorm());
    if (!weights.config().tieWordEmbeddings()) {
      put(t, "lm_head.weight", weights.lmHead());
    }
    return t;
  }

  /** Adds {@code a} as F32 under {@code name}; a null array (absent bias) adds nothing. */
  private static void put(Map<String, SafetensorsWriter.Tensor> t, String name, INDArray a) {
    if (a != null) {
      t.put(name, PeftAdapter.f32(a));
    }
  }
}
