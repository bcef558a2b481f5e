package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.lora.AdapterChain;
import io.loraspark.train.lora.ChainedAdapters;
import io.loraspark.train.lora.LoraMerge;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.safetensors.SafetensorsCheckpoint;
import io.loraspark.train.safetensors.SafetensorsFile;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code merge}: folds a PEFT LoRA adapter into its base model ({@code W + s·B·A}) and writes a
 * plain Hugging Face checkpoint (F32 {@code model.safetensors}, {@code config.json} and the
 * tokenizer files) that loads without adapter support.
 *
 * <p>The checkpoint is assembled in a hidden sibling directory and renamed to OUTPUT only when
 * complete, so OUTPUT never holds half a model. An existing non-empty OUTPUT is replaced only with
 * {@code --force}; OUTPUT may never be, or contain, the base model or the adapter directory.
 */
@Command(
    name = "merge",
    mixinStandardHelpOptions = true,
    description =
        "Writes MODEL + s·B·A of ADAPTER as a new Hugging Face checkpoint at OUTPUT; prints"
            + " {\"output\", \"merged_modules\", \"tensors\"} as one JSON line.")
final class MergeCommand implements Callable<Integer> {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--model", required = true, description = "base Hugging Face checkpoint")
  Path model;

  @Option(names = "--adapter", required = true, description = "PEFT LoRA adapter directory")
  Path adapter;

  @Option(names = "--output", required = true, description = "checkpoint directory to write")
  Path output;

  @Option(names = "--force", description = "replace a non-empty OUTPUT")
  boolean force;

  @Override
  public Integer call() {
    Path out = output.toAbsolutePath().normalize();
    AtomicDirectory.checkOutput(out, output, force, model, adapter);
    ModelWeights base = CheckpointLoader.load(model);
    LoraWeights lora = AdapterOption.load(adapter, model, base);
    ModelWeights merged =
        ChainedAdapters.merged(
            adapter,
            AdapterChain.of(adapter.toString()),
            base,
            (dir, w) -> AdapterOption.load(dir, model, w));
    AtomicDirectory.writeStaged(out, "merge", dir -> LoraMerge.writeCheckpoint(merged, model, dir));
    int tensors;
    try (SafetensorsFile f = SafetensorsFile.open(out.resolve(SafetensorsCheckpoint.SINGLE_FILE))) {
      tensors = f.names().size();
    }
    ObjectNode json = ScoreInput.STRICT.createObjectNode();
    json.put("output", out.toString());
    json.put("base_model", model.toAbsolutePath().normalize().toString());
    json.put("adapter", adapter.toAbsolutePath().normalize().toString());
    json.put("merged_modules", lora.modules().size());
    json.put("scaling", lora.config().scaling());
    json.put("tensors", tensors);
    spec.commandLine().getOut().println(json);
    return Main.OK;
  }
}
