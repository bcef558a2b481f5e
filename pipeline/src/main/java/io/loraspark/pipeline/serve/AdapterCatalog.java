package io.loraspark.pipeline.serve;

import io.loraspark.train.cache.AdapterCacheFullException;
import io.loraspark.train.cache.AdapterCacheStats;
import io.loraspark.train.cache.AdapterSource;
import io.loraspark.train.decode.AdapterRegistry;
import io.loraspark.train.lora.PeftAdapter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The adapters a server answers for, by name, each with the directory it is read from: every
 * adapter directory under {@code --adapters DIR}; every {@code adapters/<id>/} of a sweep {@code
 * --run DIR} plus its {@code best/} as {@code best}; each {@code --adapter NAME=DIR}; and whatever
 * {@code /v1/load_lora_adapter} adds at run time. The directories themselves are read lazily
 * through the adapter cache (a name costs nothing until a request uses it). A path is accepted only
 * when its real location is inside an allowed root. Thread-safe.
 */
final class AdapterCatalog {
  private final AdapterRegistry registry;
  private final AdapterSource source;
  private final Map<String, String> sources = new LinkedHashMap<>(); // guarded by this

  AdapterCatalog(AdapterRegistry registry, AdapterSource source) {
    this.registry = registry;
    this.source = source;
  }

  /** Adds every adapter directory directly under {@code dir} by its directory name. */
  void addDirectory(Path dir) {
    for (Path child : children(dir)) {
      if (Files.isRegularFile(child.resolve(PeftAdapter.CONFIG_FILE))) {
        add(child.getFileName().toString(), child.toString());
      }
    }
  }

  /** Adds a sweep run's adapters by id, and its best adapter as {@code best}. */
  void addRun(Path run) {
    Path adapters = run.resolve("adapters");
    if (!Files.isDirectory(adapters)) {
      throw new IllegalArgumentException(
          run
              + " has no adapters/ directory; expected a run directory written by run or train"
              + " --config");
    }
    addDirectory(adapters);
    Path best = run.resolve("best");
    if (Files.isRegularFile(best.resolve(PeftAdapter.CONFIG_FILE))) {
      add("best", best.toString());
    }
  }

  /**
   * Registers {@code name} as the adapter at {@code path} (checked against the allowed roots now;
   * read on first use).
   *
   * @throws IllegalArgumentException if the path is outside the allowed roots or not an adapter
   */
  synchronized void add(String name, String path) {
    try (var dir = source.resolve(path)) {
      sources.put(name, dir.source());
    }
  }

  /**
   * vLLM's {@code load_lora_adapter}: registers and reads {@code name} now, so a bad adapter fails
   * this call rather than a later request.
   */
  void load(String name, String path) {
    synchronized (this) {
      if (sources.containsKey(name)) {
        throw ApiError.invalid("lora_name", "an adapter named '" + name + "' is already loaded");
      }
    }
    try {
      registry.cache().load(name, path);
    } catch (AdapterCacheFullException e) {
      throw ApiError.full("the adapter cache is full of adapters in use: " + e.getMessage());
    } catch (java.io.UncheckedIOException e) {
      throw ApiError.invalid("lora_path", e.getMessage());
    }
    synchronized (this) {
      sources.put(name, path);
    }
  }

  /** vLLM's {@code unload_lora_adapter}: the name is unknown (404) until loaded again. */
  boolean unload(String name) {
    boolean known;
    synchronized (this) {
      known = sources.remove(name) != null;
    }
    registry.cache().unload(name);
    return known;
  }

  synchronized boolean contains(String name) {
    return sources.containsKey(name);
  }

  synchronized List<String> names() {
    return new ArrayList<>(sources.keySet());
  }

  /**
   * Leases the named adapters with their weights, reading any not in RAM.
   *
   * @throws ApiError 404 naming an unknown adapter
   */
  AdapterRegistry.MixLease acquire(List<String> names, float[] weights) {
    for (String name : names) {
      String path;
      synchronized (this) {
        path = sources.get(name);
      }
      if (path == null) {
        throw ApiError.unknownModel(name);
      }
      if (!registry.cache().names().contains(name)) {
        try {
          registry.cache().load(name, path);
        } catch (AdapterCacheFullException e) {
          throw ApiError.full(
              "the adapter cache cannot take '" + name + "' now: " + e.getMessage());
        } catch (IllegalStateException alreadyLoadedOrLoading) {
          // another request loaded it first; acquire below shares it
        }
      }
    }
    try {
      return registry.acquire(names, weights);
    } catch (AdapterCacheFullException e) {
      throw ApiError.full("the adapter cache is full of adapters in use: " + e.getMessage());
    }
  }

  AdapterCacheStats stats() {
    return registry.cache().stats();
  }

  private static List<Path> children(Path dir) {
    if (!Files.isDirectory(dir)) {
      throw new IllegalArgumentException(dir + " is not a directory of PEFT adapter directories");
    }
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(Files::isDirectory).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException(dir + ": cannot list: " + e.getMessage(), e);
    }
  }
}
