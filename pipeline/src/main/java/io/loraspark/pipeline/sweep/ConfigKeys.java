package io.loraspark.pipeline.sweep;

import io.loraspark.prep.job.PreprocessConfig;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Every key a run or sweep config accepts, with its type, default and meaning: the one definition
 * that {@link SweepConfig} validates against and the README's configuration reference is generated
 * from ({@link #markdown()}; {@code ConfigReferenceTest} fails when the README differs), so the
 * documentation cannot drift from the code.
 */
public final class ConfigKeys {

  /** The value types a key takes; each is checked when the config is read or planned. */
  public enum Type {
    STRING("string"),
    PATH("path"),
    URI("path or URI"),
    INTEGER("integer"),
    NUMBER("number"),
    BOOLEAN("boolean"),
    NAMES("list of names"),
    MAPPING("mapping"),
    LIST("list");

    final String label;

    Type(String label) {
      this.label = label;
    }

    /** How the reference names the type. */
    public String label() {
      return label;
    }
  }

  /**
   * One config key.
   *
   * @param section where it lives: {@code ""} for the top level, else the section name
   * @param defaultValue the default as a reader sees it ({@code —} when required or empty)
   */
  public record Key(String section, String name, Type type, String defaultValue, String meaning) {
    /** The dotted name, e.g. {@code pruning.eta}; adapter settings are {@code <adapter>.rank}. */
    public String path() {
      return section.isEmpty() ? name : section + "." + name;
    }
  }

  /** Default number of adapters trained fused in one Spark task. */
  public static final int DEFAULT_ADAPTERS_PER_TASK = 4;

  /** Default steps between resumable checkpoints. */
  public static final int DEFAULT_CHECKPOINT_EVERY = 50;

  /** Top-level keys. */
  public static final List<Key> TOP =
      List.of(
          key(
              "",
              "model",
              Type.PATH,
              "required",
              "Hugging Face checkpoint directory of the base"
                  + " model (config.json + safetensors), readable at the same path on every executor"),
          key(
              "",
              "data",
              Type.PATH,
              "required without `preprocess`",
              "training data: `preprocess`"
                  + " output (its root or `shards/`) or token JSONL; `run` sets it to its own shards"),
          key("", "output", Type.PATH, "`runs/<run_id>`", "run directory; `--output` overrides"),
          key(
              "",
              "run_id",
              Type.STRING,
              "`run-<date>`",
              "names the run; `run --run-date D` makes" + " it `<run_id>-D`; `--run-id` overrides"),
          key("", "master", Type.STRING, "spark-submit's, else `local[*]`", "Spark master URL"),
          key("", "defaults", Type.MAPPING, "{}", "adapter settings shared by every adapter"),
          key(
              "",
              "grid",
              Type.MAPPING,
              "{}",
              "adapter setting → list of values; the sweep is"
                  + " their cross product (last key varies fastest), at most "
                  + SweepPlan.MAX_ADAPTERS
                  + " adapters"),
          key(
              "",
              "adapters",
              Type.LIST,
              "[]",
              "explicit adapters (setting maps over `defaults`)," + " trained after the grid's"),
          key(
              "",
              "adapters_per_task",
              Type.INTEGER,
              "" + DEFAULT_ADAPTERS_PER_TASK,
              "adapters" + " trained fused on one shared base copy per Spark task, 1–64"),
          key(
              "",
              "pruning",
              Type.MAPPING,
              "none",
              "successive halving (see `pruning.*`), or the"
                  + " word `none` / `successive_halving`"),
          key(
              "",
              "checkpoint_every",
              Type.INTEGER,
              "" + DEFAULT_CHECKPOINT_EVERY,
              "optimizer"
                  + " steps between resumable checkpoints (0: only at the end of each round)"),
          key(
              "",
              "base_quant",
              Type.STRING,
              "none",
              "frozen base projections on every executor: `none` (float32), `int8` (per-row"
                  + " absmax) or `nf4` (QLoRA 4-bit NormalFloat, blocks of 64, double-quantised"
                  + " scales), dequantised per GEMM; embeddings, norms and lm_head stay float32"),
          key(
              "",
              "recompute_activations",
              Type.BOOLEAN,
              "false",
              "recompute each layer's activations during backward instead of keeping all"
                  + " layers': the same gradients, one layer's activations in memory instead of"
                  + " every layer's, about a third more compute; for long sequences"),
          key(
              "",
              "precision",
              Type.STRING,
              "auto",
              "the frozen projections', LM head's and attention's GEMMs in training: `fp32`,"
                  + " `bf16` (oneDNN bf16 matmuls, f32 accumulation; adapters, optimizer, norms,"
                  + " softmax and loss stay fp32) or `auto`"
                  + " (bf16 on executors whose CPU has AMX, else fp32)"),
          key("", "spark", Type.MAPPING, "{}", "extra `spark.*` settings for the session"),
          key(
              "",
              "preprocess",
              Type.MAPPING,
              "none",
              "`run`'s first stage (see `preprocess.*`):"
                  + " instruction data → tokenized Parquet shards in the run directory"),
          key(
              "",
              "stages",
              Type.LIST,
              "none",
              "a tree of adapters (see `stages[].*`): each stage a sweep of its own whose"
                  + " adapters train on top of the previous stage's best (or top-k)"));

  /** Keys of one {@code stages} entry: its own sweep over the top-level settings. */
  public static final List<Key> STAGE =
      List.of(
          key("stages[]", "name", Type.STRING, "required", "unique; the stage's directory name"),
          key(
              "stages[]",
              "data",
              Type.URI,
              "the top level's",
              "the stage's training data, as the top-level `data`"),
          key(
              "stages[]",
              "preprocess",
              Type.MAPPING,
              "the top level's",
              "the stage's `preprocess:` (`run`), written to its stage directory"),
          key(
              "stages[]",
              "defaults",
              Type.MAPPING,
              "{}",
              "adapter settings over the top-level `defaults`"),
          key(
              "stages[]",
              "grid",
              Type.MAPPING,
              "the top level's",
              "the stage's grid; with `adapters`, replaces the top level's both"),
          key(
              "stages[]",
              "adapters",
              Type.LIST,
              "the top level's",
              "the stage's explicit adapters"),
          key("stages[]", "pruning", Type.MAPPING, "the top level's", "the stage's pruning"),
          key(
              "stages[]",
              "parents",
              Type.MAPPING,
              "`{top_k: 1}`",
              "stage 2 on: `top_k: K` makes each grid point a child of each of the previous"
                  + " stage's K best finished adapters (K ≥ 1)"));

  /** Keys of a stage's {@code parents} mapping (from the second stage on). */
  public static final List<Key> PARENTS =
      List.of(
          key(
              "stages[].parents",
              "top_k",
              Type.INTEGER,
              "1",
              "how many of the previous stage's best finished adapters each grid point trains"
                  + " under (ids end `-p<k>` when more than 1); ≥ 1"));

  /** Keys of the {@code pruning} section. */
  public static final List<Key> PRUNING =
      List.of(
          key(
              "pruning",
              "strategy",
              Type.STRING,
              "successive_halving",
              "`successive_halving` or" + " `none` (every adapter trains to `steps`)"),
          key(
              "pruning",
              "eta",
              Type.INTEGER,
              "3",
              "keep the best 1/eta by eval loss at each rung;" + " ≥ 2"),
          key(
              "pruning",
              "min_steps",
              Type.INTEGER,
              "0",
              "first rung (0: steps / eta²); the rungs" + " are min_steps · eta^i below `steps`"));

  /** Keys of the {@code preprocess} section. */
  public static final List<Key> PREPROCESS =
      List.of(
          key(
              "preprocess",
              "input",
              Type.PATH,
              "required",
              "instruction data: file, directory or"
                  + " glob of JSONL, JSON array, Parquet or CSV"),
          key(
              "preprocess",
              "format",
              Type.STRING,
              "auto",
              "record layout: auto, alpaca, dolly," + " sharegpt, messages or self_instruct"),
          key(
              "preprocess",
              "template",
              Type.STRING,
              "auto",
              "prompt template: auto (the model's"
                  + " chat template if it has one, else Alpaca), alpaca or chat"),
          key(
              "preprocess",
              "max_seq_len",
              Type.INTEGER,
              "0",
              "max tokens per row; 0 = the"
                  + " tokenizer's model_max_length (else "
                  + PreprocessConfig.FALLBACK_MAX_SEQ_LEN
                  + ")"),
          key(
              "preprocess",
              "on_too_long",
              Type.STRING,
              "truncate",
              "`truncate` (cut the response)"
                  + " or `reject`; rejected rows are kept in `rejected/` with their reason"),
          key(
              "preprocess",
              "pack",
              Type.BOOLEAN,
              "false",
              "pack short examples into rows of up to"
                  + " max_seq_len tokens (attention stays within each example)"),
          key(
              "preprocess",
              "eval_fraction",
              Type.NUMBER,
              "" + PreprocessConfig.DEFAULT_EVAL_FRACTION,
              "fraction of examples held out for"
                  + " eval loss, by a hash of the example; in [0, 1)"),
          key(
              "preprocess",
              "seed",
              Type.INTEGER,
              "" + PreprocessConfig.DEFAULT_SEED,
              "root seed" + " of the split, shard and order hashes"),
          key(
              "preprocess",
              "shards",
              Type.INTEGER,
              "" + PreprocessConfig.DEFAULT_SHARDS,
              "number of Parquet shards written"));

  /**
   * Adapter settings, allowed in {@code defaults}, as {@code grid} keys and in {@code adapters}
   * entries: the rows of {@link AdapterSettings}, whose defaults {@code train}'s flags and the
   * Spark ML params also take.
   */
  public static final List<Key> ADAPTER =
      AdapterSettings.ALL.stream()
          .map(a -> key("adapter", a.name(), a.type(), a.defaultText(), a.description()))
          .toList();

  private ConfigKeys() {}

  /** The names of {@code keys}, in definition order. */
  public static Set<String> names(List<Key> keys) {
    return keys.stream().map(Key::name).collect(Collectors.toCollection(LinkedHashSet::new));
  }

  /** The key named {@code name} in {@code keys}. */
  public static Key find(List<Key> keys, String name) {
    return keys.stream()
        .filter(k -> k.name().equals(name))
        .findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no config key " + name));
  }

  /** The configuration reference as Markdown tables, as the README shows it. */
  public static String markdown() {
    StringBuilder md = new StringBuilder();
    table(md, "Top level", TOP);
    table(md, "`pruning:`", PRUNING);
    table(md, "`preprocess:` (`run` only)", PREPROCESS);
    table(md, "`stages:` entries (a tree of adapters)", STAGE);
    table(md, "`stages[].parents:`", PARENTS);
    table(
        md,
        "Adapter settings (`defaults:`, `grid:` keys with lists, `adapters:` entries)",
        ADAPTER);
    return md.toString();
  }

  private static void table(StringBuilder md, String title, List<Key> keys) {
    md.append("**").append(title).append("**\n\n");
    md.append("| key | type | default | meaning |\n|---|---|---|---|\n");
    for (Key k : keys) {
      md.append(
          String.format(
              Locale.ROOT,
              "| `%s` | %s | %s | %s |%n",
              k.name(),
              k.type().label,
              k.defaultValue(),
              k.meaning().replace("|", "\\|")));
    }
    md.append('\n');
  }

  private static Key key(String section, String name, Type type, String dflt, String meaning) {
    return new Key(section, name, type, dflt, meaning);
  }
}
