package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.pipeline.generate.TextGeneration;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.cache.AdapterSource;
import io.loraspark.train.decode.AdapterRegistry;
import io.loraspark.train.decode.BatchDecoder;
import io.loraspark.train.decode.DecodeEngine;
import io.loraspark.train.decode.Request;
import io.loraspark.train.decode.Result;
import io.loraspark.train.decode.SamplingParams;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code generate}: continues a prompt with KV-cached decoding, greedy by default or sampled, with
 * any number of adapters applied unmerged and composed by weight.
 */
@Command(
    name = "generate",
    mixinStandardHelpOptions = true,
    description =
        "Continues PROMPT (greedy unless --temperature > 0); prints the text, or one JSON line with"
            + " --json.")
final class GenerateCommand implements Callable<Integer> {
  /** Remote file systems an --adapter URI may name (their Hadoop connectors must be present). */
  static final List<String> REMOTE_SCHEMES =
      List.of("hdfs", "s3a", "s3", "gs", "abfs", "abfss", "wasb", "wasbs", "viewfs");

  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--model", required = true, description = "Hugging Face checkpoint directory")
  Path model;

  @Option(
      names = "--adapter",
      paramLabel = "[NAME=]DIR[:WEIGHT]",
      description =
          "a PEFT adapter directory (or hdfs:/s3a:/file: URI) applied without merging; repeat to"
              + " compose adapters as the weighted sum of their updates (LoRA, LoRA-FA, VeRA,"
              + " AdaLoRA, Delta-LoRA); WEIGHT (default 1) only after the last ':' and only when"
              + " numeric")
  List<String> adapters = new ArrayList<>();

  @Option(names = "--prompt", required = true, description = "the text to continue")
  String prompt;

  @Option(
      names = "--max-new-tokens",
      defaultValue = "64",
      description = "most tokens to generate (default: ${DEFAULT-VALUE})")
  int maxNewTokens;

  @Option(
      names = "--temperature",
      defaultValue = "0",
      description = "0 is greedy; > 0 samples from softmax(logits / T) (default: ${DEFAULT-VALUE})")
  double temperature;

  @Option(
      names = "--top-k",
      defaultValue = "0",
      description = "sample among the K most likely tokens, 0 for all (default: ${DEFAULT-VALUE})")
  int topK;

  @Option(
      names = "--top-p",
      defaultValue = "1",
      description =
          "sample within the smallest set of probability >= P (default: ${DEFAULT-VALUE})")
  double topP;

  @Option(
      names = "--seed",
      defaultValue = "0",
      description = "seed of the sampling: same seed, same text (default: ${DEFAULT-VALUE})")
  long seed;

  @Option(
      names = "--stop",
      description = "stop once the generated text contains this string (repeatable; not printed)")
  List<String> stops = new ArrayList<>();

  @Option(
      names = "--stop-token-id",
      paramLabel = "ID",
      description = "stop after generating this token id (repeatable; besides the model's EOS)")
  List<Integer> stopIds = new ArrayList<>();

  @Mixin DecodeOptions decoding;

  @Option(names = "--logprobs", description = "with --json: each generated token's log-probability")
  boolean logprobs;

  @Option(
      names = "--json",
      description =
          "print {\"prompt_ids\", \"generated_ids\", \"text\", \"completion\", \"finish_reason\","
              + " \"adapters\"} instead of the text")
  boolean json;

  @Override
  public Integer call() {
    var decodePrecision = decoding.precision();
    decoding.applyThreads();
    SamplingParams params =
        new SamplingParams(
            maxNewTokens, temperature, topK, topP, seed, Set.copyOf(stopIds), logprobs);
    List<AdapterSpec> specs = adapters.stream().map(AdapterSpec::parse).toList();
    ModelWeights base = CheckpointLoader.load(model);
    checkIds(base.config().vocabSize());
    AdapterRegistry registry = registry(base);
    List<String> names = new ArrayList<>();
    float[] weights = new float[specs.size()];
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < specs.size(); i++) {
      AdapterSpec a = specs.get(i);
      if (!seen.add(a.name())) {
        throw new IllegalArgumentException(
            "--adapter: two adapters are named '" + a.name() + "'; name them with NAME=DIR");
      }
      registry.cache().load(a.name(), a.source());
      names.add(a.name());
      weights[i] = (float) a.weight();
    }
    try (TextTokenizer tokenizer = TextTokenizer.load(model);
        AdapterRegistry.MixLease mix = registry.acquire(names, weights)) {
      TextGeneration text = new TextGeneration(tokenizer);
      TextGeneration.TextRequest tr = text.request(prompt, mix.mix(), params, stops);
      Request request = tr.request();
      Result result = BatchDecoder.generate(new DecodeEngine(base, decodePrecision), request);
      String completion = tr.text().completion();
      print(tokenizer, request, result, completion, mix);
    }
    return Main.OK;
  }

  private void checkIds(int vocab) {
    for (int id : stopIds) {
      if (id < 0 || id >= vocab) {
        throw new IllegalArgumentException(
            "--stop-token-id " + id + " is outside the vocabulary [0, " + vocab + ")");
      }
    }
  }

  /** Adapters from local paths anywhere (the user's own files) or from remote file systems. */
  private AdapterRegistry registry(ModelWeights base) {
    AdapterSource source =
        AdapterSource.builder(Path.of("").toAbsolutePath())
            .allowAnyLocalPath(true)
            .allowRemoteSchemes(REMOTE_SCHEMES)
            .build();
    return new AdapterRegistry(
        source, Long.MAX_VALUE, (name, dir) -> AdapterOption.loadForDecoding(dir, model, base));
  }

  private void print(
      TextTokenizer tokenizer,
      Request request,
      Result result,
      String completion,
      AdapterRegistry.MixLease mix) {
    int[] promptIds = request.promptIds();
    String text = tokenizer.decode(promptIds, true) + completion;
    if (!json) {
      spec.commandLine().getOut().println(text);
      return;
    }
    ObjectNode out = ScoreInput.STRICT.createObjectNode();
    out.putPOJO("prompt_ids", promptIds);
    out.putPOJO("generated_ids", result.tokens());
    out.put("text", text);
    out.put("completion", completion);
    out.put("finish_reason", result.finishReason());
    ArrayNode used = out.putArray("adapters");
    for (int i = 0; i < mix.mix().adapters().size(); i++) {
      used.addObject()
          .put("name", mix.mix().adapters().get(i).name())
          .put("weight", mix.mix().weights()[i]);
    }
    if (result.logprobs() != null) {
      out.putPOJO("logprobs", result.logprobs());
    }
    spec.commandLine().getOut().println(out);
  }
}
