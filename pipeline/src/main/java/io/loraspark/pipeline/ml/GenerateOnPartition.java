package io.loraspark.pipeline.ml;

import io.loraspark.pipeline.generate.CompletionText;
import io.loraspark.pipeline.generate.TextGeneration;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.cache.AdapterSource;
import io.loraspark.train.decode.AdapterMix;
import io.loraspark.train.decode.AdapterRegistry;
import io.loraspark.train.decode.BatchDecoder;
import io.loraspark.train.decode.DecodeEngine;
import io.loraspark.train.decode.Result;
import io.loraspark.train.decode.SamplingParams;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.spark.BaseModelCache;
import io.loraspark.train.spark.NativeThreads;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.util.TaskCompletionListener;

/**
 * Executor side of {@link LoraGenerator#transform}: one {@link DecodeEngine}, {@link BatchDecoder}
 * and tokenizer per partition, on the executor's shared base model and adapter registry. Rows are
 * submitted in input order while fewer than {@code maxBatchRows} of them are decoding (continuous
 * batching: a finished request's slot is refilled at the next step), and emitted in input order as
 * soon as they and every row before them are done. Each request holds a lease on its adapter until
 * it finishes; leases still open and the tokenizer are closed when the partition ends or the task
 * does (failed or abandoned).
 */
final class GenerateOnPartition implements MapPartitionsFunction<Row, Row>, Serializable {
  private static final long serialVersionUID = 1L;

  /** Rows held at once per partition (decoding or done and waiting for an earlier row), × batch. */
  private static final int QUEUED_PER_BATCH_ROW = 8;

  private static final float[] WEIGHT_ONE = {1f};

  /**
   * What a task needs, copied from the generator's params on the driver.
   *
   * @param adapterRoot null when no row names an adapter
   * @param promptIndex the prompt column's index in the input rows
   * @param adapterIndex the adapter column's index, or -1 for none
   * @param threads kernel threads for this task (its {@code spark.task.cpus})
   */
  record Settings(
      String modelPath,
      String adapterRoot,
      int promptIndex,
      int adapterIndex,
      int maxNewTokens,
      double temperature,
      int topK,
      double topP,
      long seed,
      List<String> stopStrings,
      long adapterCacheBytes,
      int maxBatchRows,
      int threads)
      implements Serializable {
    Settings {
      stopStrings = List.copyOf(stopStrings);
    }
  }

  private final Settings s;

  GenerateOnPartition(Settings settings) {
    this.s = settings;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    if (!input.hasNext()) {
      return Collections.emptyIterator();
    }
    NativeThreads.configure(s.threads());
    Path model = Path.of(s.modelPath());
    ModelWeights base = BaseModelCache.get(model).weights();
    AdapterRegistry registry = s.adapterIndex() < 0 ? null : registry(model, base);
    Generation g =
        new Generation(input, new DecodeEngine(base), registry, TextTokenizer.load(model));
    TaskContext task = TaskContext.get();
    if (task != null) {
      task.addTaskCompletionListener((TaskCompletionListener) ctx -> g.close());
    }
    return g;
  }

  /**
   * This JVM's adapter registry for the checkpoint (path and content hash), the adapter root and
   * the budget: a generator with another root or budget gets its own.
   */
  private AdapterRegistry registry(Path model, ModelWeights base) {
    Path root = Path.of(s.adapterRoot()).toAbsolutePath().normalize();
    String key =
        model.toAbsolutePath().normalize()
            + "#"
            + BaseModelCache.contentHash(model)
            + " adapters "
            + root
            + " budget "
            + s.adapterCacheBytes();
    return AdapterRegistry.forBase(
        key, base, () -> AdapterSource.namesUnder(root), s.adapterCacheBytes());
  }

  /** The seed and sampling of the row with {@code prompt} (the stop ids come from the model). */
  private SamplingParams sampling(String prompt) {
    return new SamplingParams(
        s.maxNewTokens(),
        s.temperature(),
        s.topK(),
        s.topP(),
        LoraGenerator.rowSeed(s.seed(), prompt),
        Set.of(),
        false);
  }

  /**
   * A row on its way through the decoder; {@code done} completes with null for a null prompt.
   *
   * @param text its completion text, or null for a null prompt
   * @param lease its adapters, or null for the base
   */
  private record Pending(
      Row row,
      CompletableFuture<Result> done,
      CompletionText text,
      AdapterRegistry.MixLease lease) {}

  /** One partition's rows, in input order with their texts appended. */
  private final class Generation implements Iterator<Row>, AutoCloseable {
    private final Iterator<Row> input;
    private final BatchDecoder decoder;
    private final AdapterRegistry registry;
    private final TextTokenizer tokenizer;
    private final TextGeneration text;
    private final ArrayDeque<Pending> queue = new ArrayDeque<>(); // input order
    private final int maxQueued;
    private int decoding; // submitted requests not yet done

    Generation(
        Iterator<Row> input, DecodeEngine engine, AdapterRegistry registry, TextTokenizer tok) {
      this.input = input;
      this.decoder = new BatchDecoder(engine, s.maxBatchRows());
      this.registry = registry;
      this.tokenizer = tok;
      this.text = new TextGeneration(tok);
      this.maxQueued =
          (int) Math.min(Integer.MAX_VALUE, (long) s.maxBatchRows() * QUEUED_PER_BATCH_ROW);
    }

    /**
     * Admits rows and steps the decoder until the earliest queued row is done (or none is left).
     */
    @Override
    public boolean hasNext() {
      while (true) {
        if (!queue.isEmpty() && queue.peek().done().isDone()) {
          return true;
        }
        admit();
        if (queue.isEmpty()) {
          close();
          return false;
        }
        if (!queue.peek().done().isDone()) {
          decoder.step(); // a failed step throws the engine's exception: the task fails with it
        }
      }
    }

    @Override
    public Row next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      Pending p = queue.poll();
      Result r = p.done().join();
      String out = r == null ? null : p.text().completion();
      return append(p.row(), out);
    }

    /** Submits input rows while the decoder and the queue have room. */
    private void admit() {
      while (input.hasNext() && decoding < s.maxBatchRows() && queue.size() < maxQueued) {
        queue.add(submit(input.next()));
      }
    }

    /**
     * Queues {@code row}'s request, leasing its adapter until the request finishes.
     *
     * @throws IllegalArgumentException for an unknown adapter name, a prompt the model cannot take
     *     or an empty stop string (nothing stays leased)
     */
    private Pending submit(Row row) {
      if (row.isNullAt(s.promptIndex())) {
        return new Pending(row, CompletableFuture.completedFuture(null), null, null);
      }
      String prompt = row.getString(s.promptIndex());
      String adapter = s.adapterIndex() < 0 ? null : row.getString(s.adapterIndex());
      AdapterRegistry.MixLease lease =
          adapter == null || adapter.isEmpty()
              ? null
              : registry.acquire(List.of(adapter), WEIGHT_ONE);
      try {
        AdapterMix mix = lease == null ? AdapterMix.NONE : lease.mix();
        TextGeneration.TextRequest request =
            text.request(prompt, mix, sampling(prompt), s.stopStrings());
        CompletableFuture<Result> done = decoder.submit(request.request());
        decoding++;
        done.whenComplete(
            (result, failure) -> { // on this thread, inside decoder.step()
              decoding--;
              if (lease != null) {
                lease.close();
              }
            });
        return new Pending(row, done, request.text(), lease);
      } catch (RuntimeException e) {
        if (lease != null) {
          lease.close();
        }
        throw e;
      }
    }

    /** Closes the leases of rows still queued and the tokenizer; idempotent. */
    @Override
    public void close() {
      for (Pending p : queue) {
        if (p.lease() != null) {
          p.lease().close();
        }
      }
      tokenizer.close();
    }
  }

  private static Row append(Row r, String generated) {
    Object[] values = new Object[r.length() + 1];
    for (int i = 0; i < r.length(); i++) {
      values[i] = r.get(i);
    }
    values[r.length()] = generated;
    return RowFactory.create(values);
  }
}
