package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.data.TokenLimits;
import io.loraspark.train.loop.Evaluator;
import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code score}: mean next-token cross-entropy of a model, optionally with a LoRA adapter applied
 * unmerged, on JSONL rows, as one JSON line.
 */
@Command(
    name = "score",
    mixinStandardHelpOptions = true,
    description = {
      "Prints {\"loss\": <mean next-token cross-entropy in nats>, \"tokens\": <scored tokens>}.",
      "DATA is JSONL: {\"input_ids\": [...], \"labels\": [...]?} (labels -100 are not scored;"
          + " logits at t-1 are scored against labels[t]) or {\"text\": \"...\"}."
    })
final class ScoreCommand implements Callable<Integer> {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--model", required = true, description = "Hugging Face checkpoint directory")
  Path model;

  @Option(names = "--data", required = true, description = "JSONL file to score")
  Path data;

  @Option(
      names = "--adapter",
      description = "PEFT LoRA adapter directory applied without merging (default: none)")
  Path adapter;

  @Option(
      names = "--batch-size",
      defaultValue = "" + Evaluator.DEFAULT_BATCH_SIZE,
      description = "rows per forward pass (default: ${DEFAULT-VALUE})")
  int batchSize;

  @Override
  public Integer call() {
    if (batchSize < 1) {
      throw new IllegalArgumentException("--batch-size must be >= 1 but was " + batchSize);
    }
    Transformer transformer = new Transformer(CheckpointLoader.load(model));
    Adapters adapters = AdapterOption.adapters(adapter, model, transformer.weights());
    LazyTokenizer tokenizer = new LazyTokenizer(model);
    try (tokenizer) {
      List<TokenRow> rows = ScoreInput.read(data, tokenizer, TokenLimits.of(transformer.config()));
      LossStats stats = Evaluator.score(transformer, adapters, rows, batchSize, 0);
      if (stats.totalCount() == 0) {
        throw new IllegalArgumentException(data + ": no token is scored (all labels are -100?)");
      }
      ObjectNode out = ScoreInput.STRICT.createObjectNode();
      out.put("loss", stats.totalNll() / stats.totalCount());
      out.put("tokens", stats.totalCount());
      spec.commandLine().getOut().println(out);
    }
    return Main.OK;
  }

  /** Opens the model's tokenizer on first use: token-id input needs no tokenizer files. */
  static final class LazyTokenizer
      implements java.util.function.Supplier<TextTokenizer>, AutoCloseable {
    private final Path modelDir;
    private TextTokenizer tokenizer;

    LazyTokenizer(Path modelDir) {
      this.modelDir = modelDir;
    }

    @Override
    public TextTokenizer get() {
      if (tokenizer == null) {
        tokenizer = TextTokenizer.load(modelDir);
      }
      return tokenizer;
    }

    @Override
    public void close() {
      if (tokenizer != null) {
        tokenizer.close();
      }
    }
  }
}
