package io.loraspark.pipeline.serve;

import io.loraspark.pipeline.generate.TextGeneration;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.cache.AdapterSource;
import io.loraspark.train.decode.AdapterRegistry;
import io.loraspark.train.decode.DecodeEngine;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.precision.Precision;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * What {@code serve} was asked for, and how a server is built from it.
 *
 * @param model the base checkpoint directory
 * @param adaptersDir a directory of PEFT adapter directories, or null
 * @param run a sweep run directory, or null
 * @param named adapters given as NAME=DIR
 * @param roots more directories {@code load_lora_adapter} may read from
 * @param cacheBytes the adapter cache's byte budget
 * @param maxBatch the most token rows of one decode step
 * @param maxRunning the most requests decoding at once
 * @param maxQueue the most requests waiting beyond those (then 429)
 * @param apiKey the key requests must send, or null
 * @param precision the decoder's GEMM precision ({@code --precision})
 */
public record ServeOptions(
    Path model,
    Path adaptersDir,
    Path run,
    Map<String, Path> named,
    List<Path> roots,
    long cacheBytes,
    int maxBatch,
    int maxRunning,
    int maxQueue,
    String apiKey,
    Precision precision) {

  /** The name requests use for routing. */
  public static final String ROUTER = "auto";

  public ServeOptions {
    named = Map.copyOf(named);
    roots = List.copyOf(roots);
    require(cacheBytes > 0, "--cache-bytes must be > 0 but was " + cacheBytes);
    require(maxBatch >= 1, "--max-batch must be >= 1 but was " + maxBatch);
    require(maxRunning >= 1, "--max-running must be >= 1 but was " + maxRunning);
    require(maxQueue >= 0, "--max-queue must be >= 0 but was " + maxQueue);
    require(apiKey == null || !apiKey.isBlank(), "--api-key must not be blank");
  }

  private static void require(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException(message);
    }
  }

  /** The directories adapters may be read from: every source given, and --adapter-root. */
  List<Path> allowedRoots() {
    List<Path> out = new ArrayList<>(roots);
    if (adaptersDir != null) {
      out.add(adaptersDir);
    }
    if (run != null) {
      out.add(run);
    }
    named.values().forEach(out::add);
    return out;
  }

  /**
   * Loads the base and tokenizer and builds the server (not yet listening).
   *
   * @throws IllegalArgumentException for a bad checkpoint, adapter directory or option
   */
  public LoraServer build() {
    ModelWeights base = CheckpointLoader.load(model);
    List<Path> allowed = allowedRoots();
    Path root = adaptersDir != null ? adaptersDir : run != null ? run.resolve("adapters") : model;
    AdapterSource source =
        AdapterSource.builder(root.toAbsolutePath().normalize()).allowedRoots(allowed).build();
    AdapterRegistry registry = new AdapterRegistry(base, source, cacheBytes);
    AdapterCatalog catalog = new AdapterCatalog(registry, source);
    if (adaptersDir != null) {
      catalog.addDirectory(adaptersDir);
    }
    if (run != null) {
      catalog.addRun(run);
    }
    named.forEach((name, dir) -> catalog.add(name, dir.toString()));
    TextTokenizer tokenizer = TextTokenizer.load(model);
    ServeMetrics metrics = new ServeMetrics();
    DecodeService decode =
        new DecodeService(
            new DecodeEngine(base, precision), maxBatch, maxRunning, maxQueue, metrics);
    metrics.sources(decode::inFlight, decode::queued, catalog::stats);
    String baseName = model.toAbsolutePath().normalize().getFileName().toString();
    ServerState state =
        new ServerState(
            base.config(),
            baseName,
            ROUTER,
            apiKey,
            new TextGeneration(tokenizer),
            new ChatPrompt(tokenizer, model.toString()),
            catalog,
            decode,
            new Router(base, precision), // the same packed weights as the decoder's
            metrics);
    return new LoraServer(state);
  }
}
