package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.loop.Generator;
import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.Transformer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code generate}: greedy continuation of a prompt, optionally with a LoRA adapter unmerged. */
@Command(
    name = "generate",
    mixinStandardHelpOptions = true,
    description = "Greedy continuation of PROMPT; prints the text, or one JSON line with --json.")
final class GenerateCommand implements Callable<Integer> {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--model", required = true, description = "Hugging Face checkpoint directory")
  Path model;

  @Option(
      names = "--adapter",
      description = "PEFT LoRA adapter directory applied without merging (default: none)")
  Path adapter;

  @Option(names = "--prompt", required = true, description = "the text to continue")
  String prompt;

  @Option(
      names = "--max-new-tokens",
      defaultValue = "64",
      description = "most tokens to generate (default: ${DEFAULT-VALUE})")
  int maxNewTokens;

  @Option(
      names = "--json",
      description = "print {\"prompt_ids\", \"generated_ids\", \"text\"} instead of the text")
  boolean json;

  @Override
  public Integer call() {
    if (maxNewTokens < 0) {
      throw new IllegalArgumentException("--max-new-tokens must be >= 0 but was " + maxNewTokens);
    }
    Transformer transformer = new Transformer(CheckpointLoader.load(model));
    Adapters adapters = AdapterOption.adapters(adapter, model, transformer.weights());
    try (TextTokenizer tokenizer = TextTokenizer.load(model)) {
      int[] promptIds = tokenizer.encode(prompt, true);
      Set<Integer> stop = tokenizer.eosId() >= 0 ? Set.of(tokenizer.eosId()) : Set.of();
      int[] generated = Generator.greedy(transformer, adapters, promptIds, maxNewTokens, stop);
      int[] all = Arrays.copyOf(promptIds, promptIds.length + generated.length);
      System.arraycopy(generated, 0, all, promptIds.length, generated.length);
      String text = tokenizer.decode(all, true);
      if (json) {
        ObjectNode out = ScoreInput.STRICT.createObjectNode();
        out.putPOJO("prompt_ids", promptIds);
        out.putPOJO("generated_ids", generated);
        out.put("text", text);
        spec.commandLine().getOut().println(out);
      } else {
        spec.commandLine().getOut().println(text);
      }
    }
    return Main.OK;
  }
}
