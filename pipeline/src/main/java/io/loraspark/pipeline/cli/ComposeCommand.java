package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.io.AtomicFiles;
import io.loraspark.train.lora.AdapterComposition;
import io.loraspark.train.lora.LoraForm;
import io.loraspark.train.lora.LoraFormWriter;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.ModelConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.nd4j.linalg.api.buffer.DataType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code compose}: combines PEFT adapters with weights into one plain PEFT LoRA adapter, with the
 * meanings of PEFT's {@code add_weighted_adapter} ({@link AdapterComposition}), written by {@link
 * LoraFormWriter} (one r, lora_alpha = r, no rank_pattern) beside a provenance file.
 */
@Command(
    name = "compose",
    mixinStandardHelpOptions = true,
    description = {
      "Combines adapters (lora, lora-fa, vera, adalora, saved pissa; not dora, unconverted pissa"
          + " or earlier versions' dense delta-lora) into one PEFT LoRA adapter at OUTPUT, as PEFT's"
          + " add_weighted_adapter does; prints one JSON line.",
      "cat: exactly the weighted sum of the updates, Σ w·ΔW, at rank Σ r.",
      "svd: that sum truncated to rank R (default: the largest input rank); prints the relative"
          + " Frobenius error per module.",
      "linear, ties, dare_linear, dare_ties are NOT the weighted ΔW sum: they combine the A's and"
          + " the B's apart (A by sign(w·s)·√|w·s|, B by √|w·s|, as PEFT 0.18+), need one rank"
          + " for all inputs; ties and dare_* prune to --density, dare_* at random from --seed.",
      "Unlike PEFT: svd truncates exactly cat's sum (PEFT scales each update by s twice), and"
          + " one input keeps its method (PEFT switches to linear)."
    })
final class ComposeCommand implements Callable<Integer> {
  /** The provenance file written beside the adapter. */
  static final String PROVENANCE_FILE = "compose.json";

  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(
      names = "--adapter",
      required = true,
      paramLabel = "[NAME=]DIR[:WEIGHT]",
      description = "a PEFT adapter directory and its weight (default 1); repeat for each input")
  List<String> adapters;

  @Option(
      names = "--method",
      required = true,
      description = "cat, svd, linear, ties, dare_linear or dare_ties")
  String method;

  @Option(names = "--rank", description = "svd only: the rank R of the result")
  Integer rank;

  @Option(names = "--density", description = "ties, dare_*: the fraction of entries kept, (0, 1]")
  Double density;

  @Option(
      names = "--seed",
      defaultValue = "0",
      description = "dare_*: the seed of the random drop (default: ${DEFAULT-VALUE})")
  long seed;

  @Option(
      names = "--model",
      description =
          "base checkpoint whose config.json the adapters must fit (default: the first adapter's"
              + " base_model_name_or_path, when that is a local directory)")
  Path model;

  @Option(names = "--output", required = true, description = "adapter directory to write")
  Path output;

  @Option(names = "--force", description = "replace a non-empty OUTPUT")
  boolean force;

  @Override
  public Integer call() {
    AdapterComposition.Method m = AdapterComposition.Method.parse(method);
    if (spec.commandLine().getParseResult().hasMatchedOption("--seed")
        && !m.name().startsWith("DARE")) {
      throw new IllegalArgumentException(
          "--seed applies only to dare_linear and dare_ties, not "
              + method
              + " (it drops nothing)");
    }
    AdapterComposition.Options options =
        new AdapterComposition.Options(
            m, rank == null ? 0 : rank, density == null ? Double.NaN : density, seed);
    List<AdapterSpec> specs = adapters.stream().map(AdapterSpec::parse).toList();
    Path out = output.toAbsolutePath().normalize();
    Path modelDir = model != null ? model : modelOf(specs.get(0));
    List<Path> inputs = new ArrayList<>(specs.stream().map(s -> Path.of(s.source())).toList());
    inputs.add(modelDir); // replacing the base's directory would destroy the checkpoint too
    AtomicDirectory.checkOutput(out, output, force, inputs.toArray(Path[]::new));
    ModelConfig config = ModelConfig.load(modelDir);
    List<LoraForm> forms = new ArrayList<>();
    double[] weights = new double[specs.size()];
    for (int i = 0; i < specs.size(); i++) {
      forms.add(load(specs.get(i), config));
      weights[i] = specs.get(i).weight();
    }
    AdapterComposition.Result result = AdapterComposition.compose(forms, weights, options);
    result.relativeErrors().forEach((module, err) -> note("%s: relative error %.6g", module, err));
    String base = modelDir.toAbsolutePath().normalize().toString();
    String provenance = provenance(specs, forms, options, result, base);
    AtomicDirectory.writeStaged(
        out,
        "compose",
        dir -> {
          LoraFormWriter.save(dir, result.form(), base);
          AtomicFiles.writeString(dir.resolve(PROVENANCE_FILE), provenance);
        });
    spec.commandLine().getOut().println(summary(out, options, result, specs.size()));
    return Main.OK;
  }

  /** The adapter of {@code s} in LoRA form, refusing non-additive methods before loading. */
  private static LoraForm load(AdapterSpec s, ModelConfig config) {
    Path dir = Path.of(s.source());
    LoraMethod method = PeftAdapter.readConfig(dir).method();
    LoraForm.requireAdditive(s.source(), method);
    return LoraForm.of(s.source(), PeftAdapter.load(dir, config, DataType.FLOAT));
  }

  /** The first adapter's base_model_name_or_path when it is a local checkpoint directory. */
  static Path modelOf(AdapterSpec first) {
    String base = AdapterOption.baseModelOf(Path.of(first.source()));
    if (base == null || !Files.isRegularFile(Path.of(base).resolve("config.json"))) {
      throw new IllegalArgumentException(
          "--model is required: "
              + Path.of(first.source()).resolve(PeftAdapter.CONFIG_FILE)
              + " names no local base checkpoint in base_model_name_or_path"
              + (base == null ? "" : " ('" + base + "')")
              + "; pass --model DIR with the base model's config.json");
    }
    return Path.of(base);
  }

  private void note(String format, Object... args) {
    spec.commandLine().getErr().println("compose: " + String.format(format, args));
  }

  /** What went in and how: inputs with weights, methods and content hashes; the method used. */
  private static String provenance(
      List<AdapterSpec> specs,
      List<LoraForm> forms,
      AdapterComposition.Options o,
      AdapterComposition.Result result,
      String baseModel) {
    ObjectNode json = ScoreInput.STRICT.createObjectNode();
    json.put("method", o.method().key());
    json.put("weighted_delta_sum", o.method().weightedDeltaSum());
    json.put("rank", Math.max(1, result.form().maxRank()));
    if (o.method().usesDensity()) {
      json.put("density", o.density());
    }
    if (o.method() == AdapterComposition.Method.DARE_LINEAR
        || o.method() == AdapterComposition.Method.DARE_TIES) {
      json.put("seed", o.seed());
    }
    json.put("base_model", baseModel);
    ArrayNode inputs = json.putArray("inputs");
    for (int i = 0; i < specs.size(); i++) {
      AdapterSpec s = specs.get(i);
      Path dir = Path.of(s.source()).toAbsolutePath().normalize();
      ObjectNode in = inputs.addObject();
      in.put("name", s.name());
      in.put("path", dir.toString());
      in.put("weight", s.weight());
      in.put("method", PeftAdapter.readConfig(dir).method().key());
      in.put("rank", forms.get(i).maxRank());
      in.put(PeftAdapter.WEIGHTS_FILE + "_sha256", sha256(dir.resolve(PeftAdapter.WEIGHTS_FILE)));
    }
    return json.toPrettyString();
  }

  private static String sha256(Path file) {
    try {
      return AtomicFiles.sha256(file);
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": cannot read: " + e, e);
    }
  }

  private static ObjectNode summary(
      Path out, AdapterComposition.Options o, AdapterComposition.Result result, int inputs) {
    ObjectNode json = ScoreInput.STRICT.createObjectNode();
    json.put("output", out.toString());
    json.put("method", o.method().key());
    json.put("weighted_delta_sum", o.method().weightedDeltaSum());
    json.put("rank", Math.max(1, result.form().maxRank()));
    json.put("adapters", inputs);
    json.put("modules", result.form().modules().size());
    if (!result.relativeErrors().isEmpty()) {
      ObjectNode errors = json.putObject("relative_error");
      double max = 0;
      for (Map.Entry<String, Double> e : result.relativeErrors().entrySet()) {
        errors.put(e.getKey(), e.getValue());
        max = Math.max(max, e.getValue());
      }
      json.put("max_relative_error", max);
    }
    return json;
  }
}
