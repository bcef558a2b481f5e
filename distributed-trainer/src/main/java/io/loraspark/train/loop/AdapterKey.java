package io.loraspark.train.loop;

import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.ModuleSelection;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TokenRow;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * What a checkpoint (and a round journal's adapter) is valid for: named fields in a fixed order,
 * hashed with a format version, so that adding a field to a settings record does not silently
 * invalidate every checkpoint, as hashing the records' {@code toString()} (format 1) did.
 *
 * <p>Format {@value #VERSION}: SHA-256 of the line {@code lora-spark adapter key v2} followed by
 * one {@code name=value} line per field, in this order: the adapter ({@code method rank alpha
 * dropout targets rslora}, {@code selection} only when the adapter does not cover every layer,
 * {@code parent} only for a child: its parent's content hash, which covers the whole chain above),
 * its training ({@code steps batch_size grad_accum lr lr_ratio weight_decay warmup_steps schedule
 * max_grad_norm eval_every seed}), the base model's shape ({@code model.architecture} … {@code
 * model.eos_token_id}, the config.json names) and {@code data} (a hash of the train and eval token
 * rows). Numbers are written as Java writes them ({@link Double#toString}), names in their file
 * spelling. The adapter id is not a field: it is the checkpoint's directory.
 *
 * <p>Adding a setting: append it with {@link Builder#putUnlessDefault}, so that adapters which keep
 * its default keep their key (old checkpoints resume); a setting whose meaning changes for existing
 * adapters (a new default that trains differently) is put with {@link Builder#put} for the adapters
 * it affects, which makes their old checkpoints a mismatch that names the field. Changing the
 * format of an existing field bumps {@link #VERSION}; checkpoints of another version are then
 * reported and retrained.
 *
 * @param fields the named fields in key order, values as text
 */
public record AdapterKey(Map<String, String> fields) {
  /** The key format this build writes. */
  public static final int VERSION = 2;

  /** Format 1: SHA-256 of the records' {@code toString()}, written before format 2 existed. */
  public static final int LEGACY_VERSION = 1;

  public AdapterKey {
    fields = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(fields));
  }

  /** The key of training {@code spec} on {@code model} with data of fingerprint {@code data}. */
  public static AdapterKey of(AdapterSpec spec, ModelConfig model, String data) {
    Builder b = settings(spec);
    model(b, model);
    return b.put("data", data).build();
  }

  /** The adapter's and its training's fields (no model, no data): what a sweep plans. */
  public static Builder settings(AdapterSpec spec) {
    LoraConfig l = spec.lora();
    TrainConfig t = spec.train();
    Builder b = new Builder();
    b.put("method", l.method().key())
        .put("rank", l.rank())
        .put("alpha", l.alpha())
        .put("dropout", l.dropout())
        .put("targets", String.join(",", l.targets().stream().map(Projection::shortName).toList()))
        .put("rslora", l.rsLora())
        .putUnlessDefault("selection", l.selection(), ModuleSelection.ALL);
    if (spec.parent() != null) { // a child: its parent chain's content, so roots keep their keys
      b.put("parent", spec.parent().contentHash());
    }
    if (l.deltaLora() != null) { // delta-lora only, so other methods' keys stay as they were
      b.put("delta_update_ratio", l.deltaLora().updateRatio())
          .put("delta_start_step", l.deltaLora().startStep());
    }
    return b.put("steps", t.steps())
        .put("batch_size", t.batchSize())
        .put("grad_accum", t.gradAccum())
        .put("lr", t.lr())
        .put("lr_ratio", t.lrRatio())
        .put("weight_decay", t.weightDecay())
        .put("warmup_steps", t.warmupSteps())
        .put("schedule", t.schedule().name().toLowerCase(Locale.ROOT))
        .put("max_grad_norm", t.maxGradNorm())
        .put("eval_every", t.evalEvery())
        .put("seed", t.seed());
  }

  private static void model(Builder b, ModelConfig m) {
    b.put("model.architecture", m.architecture())
        .put("model.hidden_size", m.hiddenSize())
        .put("model.intermediate_size", m.intermediateSize())
        .put("model.num_hidden_layers", m.numLayers())
        .put("model.num_attention_heads", m.numHeads())
        .put("model.num_key_value_heads", m.numKvHeads())
        .put("model.head_dim", m.headDim())
        .put("model.vocab_size", m.vocabSize())
        .put("model.max_position_embeddings", m.maxPositions())
        .put("model.rms_norm_eps", m.rmsNormEps())
        .put("model.rope_theta", m.ropeTheta())
        .put("model.tie_word_embeddings", m.tieWordEmbeddings())
        .put("model.qkv_bias", m.qkvBias())
        .put("model.o_bias", m.oBias())
        .put("model.mlp_bias", m.mlpBias())
        .put("model.bos_token_id", m.bosTokenId())
        .put("model.eos_token_id", m.eosTokenId());
  }

  /** The key's hash: the first 32 hex digits of the SHA-256 of its canonical text. */
  public String hash() {
    StringBuilder text = new StringBuilder("lora-spark adapter key v" + VERSION + "\n");
    fields.forEach((k, v) -> text.append(k).append('=').append(v).append('\n'));
    return sha256Hex(text.toString()).substring(0, 32);
  }

  /**
   * Format 1's hash of the same training, from the records' text as this build prints them: it
   * equals a format-1 checkpoint's fingerprint only while the records have not changed since.
   */
  public static String legacyHash(AdapterSpec spec, ModelConfig model, String data) {
    return sha256Hex(spec + "|" + model + "|" + data).substring(0, 32);
  }

  /**
   * The fields that differ from {@code saved} (a key's fields read back), as {@code name a → b}
   * (absent shown as -), in this key's order then the saved-only ones.
   */
  public List<String> differences(Map<String, String> saved) {
    List<String> out = new ArrayList<>();
    fields.forEach(
        (k, v) -> {
          if (!v.equals(saved.get(k))) {
            out.add(k + " " + Objects.requireNonNullElse(saved.get(k), "-") + " → " + v);
          }
        });
    saved.forEach(
        (k, v) -> {
          if (!fields.containsKey(k)) {
            out.add(k + " " + v + " → -");
          }
        });
    return out;
  }

  /**
   * A hash of training and eval token rows (sizes, then each row's ids and labels, in order): the
   * {@code data} field of a key and a run's data provenance.
   */
  public static String dataFingerprint(List<TokenRow> train, List<TokenRow> eval) {
    long h = 1;
    for (List<TokenRow> rows : List.of(train, eval)) {
      h = h * 1_000_003 + rows.size();
      for (TokenRow r : rows) {
        h = h * 31 + java.util.Arrays.hashCode(r.inputIds());
        h = h * 31 + java.util.Arrays.hashCode(r.labels());
      }
    }
    return Long.toHexString(h);
  }

  /** The SHA-256 of {@code s}'s UTF-8 bytes, as 64 hex digits. */
  public static String sha256Hex(String s) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(d);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JVM has no SHA-256", e);
    }
  }

  /** Fields in key order. */
  public static final class Builder {
    private final Map<String, String> fields = new LinkedHashMap<>();

    /** Appends {@code name=value}; a name may appear once. */
    public Builder put(String name, Object value) {
      if (fields.putIfAbsent(name, String.valueOf(value)) != null) {
        throw new IllegalStateException("key field " + name + " is already set");
      }
      return this;
    }

    /** Appends {@code name=value} unless {@code value} equals {@code dflt} (then keys stay). */
    public Builder putUnlessDefault(String name, Object value, Object dflt) {
      return Objects.equals(value, dflt) ? this : put(name, value);
    }

    public AdapterKey build() {
      return new AdapterKey(fields);
    }
  }
}
