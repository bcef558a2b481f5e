package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.io.AtomicFiles;
import io.loraspark.train.lora.AdapterChain;
import io.loraspark.train.lora.AdapterParent;
import io.loraspark.train.lora.ChainedAdapters;
import io.loraspark.train.lora.LoraForm;
import io.loraspark.train.lora.LoraFormWriter;
import io.loraspark.train.model.ModelConfig;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code export}: a node of a tree of adapters (a child with its recorded parent chain, {@link
 * AdapterChain}) written as one plain PEFT LoRA adapter, exactly: PEFT's {@code cat} of the chain's
 * nodes and the child with weight 1 ({@link ChainedAdapters#catForm}, {@link LoraFormWriter}), rank
 * Σ r, lora_alpha = r, so PEFT, vLLM and LoRAX score exactly what the chain scores. A chain with a
 * DoRA or unconverted PiSSA node has no such form and is refused in one line ({@code merge} still
 * folds it into the base).
 */
@Command(
    name = "export",
    mixinStandardHelpOptions = true,
    description = {
      "Writes ADAPTER with its recorded parent chain as one PEFT LoRA adapter at OUTPUT, exactly"
          + " (the chain's rows of A and columns of B concatenated, scalings folded in: rank Σ r,"
          + " lora_alpha = r); prints one JSON line.",
      "A chain with a dora or unconverted pissa adapter is not one LoRA and is refused; `merge`"
          + " folds such a chain into the base model."
    })
final class ExportCommand implements Callable<Integer> {
  /** The provenance file written beside the adapter. */
  static final String PROVENANCE_FILE = "lora_spark_export.json";

  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(
      names = "--adapter",
      required = true,
      description = "the adapter directory to export with its parent chain")
  Path adapter;

  @Option(
      names = "--model",
      description =
          "base checkpoint whose config.json the adapters must fit (default: the adapter's"
              + " base_model_name_or_path, when that is a local directory)")
  Path model;

  @Option(names = "--output", required = true, description = "adapter directory to write")
  Path output;

  @Option(names = "--force", description = "replace a non-empty OUTPUT")
  boolean force;

  @Override
  public Integer call() {
    Path out = output.toAbsolutePath().normalize();
    Path modelDir =
        model != null ? model : ComposeCommand.modelOf(AdapterSpec.parse(adapter.toString()));
    AtomicDirectory.checkOutput(out, output, force, adapter, modelDir);
    AdapterChain chain = AdapterChain.of(adapter.toString());
    LoraForm cat = ChainedAdapters.catForm(adapter, chain, ModelConfig.load(modelDir));
    String base = modelDir.toAbsolutePath().normalize().toString();
    String provenance = provenance(chain, cat, base);
    AtomicDirectory.writeStaged(
        out,
        "export",
        dir -> {
          LoraFormWriter.save(dir, cat, base);
          AtomicFiles.writeString(dir.resolve(PROVENANCE_FILE), provenance);
        });
    ObjectNode json = ScoreInput.STRICT.createObjectNode();
    json.put("output", out.toString());
    json.put("adapter", adapter.toAbsolutePath().normalize().toString());
    json.put("depth", chain.depth());
    json.put("rank", Math.max(1, cat.maxRank()));
    json.put("modules", cat.modules().size());
    spec.commandLine().getOut().println(json);
    return Main.OK;
  }

  /** The exported node and its chain, root first, each with its content hash. */
  private String provenance(AdapterChain chain, LoraForm cat, String baseModel) {
    ObjectNode json = ScoreInput.STRICT.createObjectNode();
    json.put("export", "cat of the parent chain and the adapter, weight 1 each");
    json.put("rank", Math.max(1, cat.maxRank()));
    json.put("base_model", baseModel);
    ArrayNode nodes = json.putArray("chain");
    for (AdapterParent p : chain.nodes()) {
      nodes.addObject().put("path", p.location()).put("sha256", p.contentHash());
    }
    String self = adapter.toAbsolutePath().normalize().toString();
    nodes.addObject().put("path", self).put("sha256", AdapterParent.contentHash(self));
    return json.toPrettyString();
  }
}
