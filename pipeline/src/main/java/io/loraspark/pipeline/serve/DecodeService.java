package io.loraspark.pipeline.serve;

import io.loraspark.train.decode.BatchDecoder;
import io.loraspark.train.decode.DecodeEngine;
import io.loraspark.train.decode.Request;
import io.loraspark.train.decode.Result;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server's one decoding thread: it owns a {@link DecodeEngine} and a {@link BatchDecoder} and
 * steps them while any request is queued or running (continuous batching across requests and
 * adapters), and parks otherwise. Admission is bounded: at most {@code maxRunning} requests decode
 * at once and {@code maxQueue} more wait; past that {@link #submit} refuses with 429. A request
 * whose future is cancelled (its client went away) leaves the batch at the next step.
 */
final class DecodeService implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(DecodeService.class);

  private final BatchDecoder decoder;
  private final Semaphore admitted;
  private final int capacity;
  private final AtomicInteger inFlight = new AtomicInteger();
  private final ServeMetrics metrics;
  private final Thread thread;
  private volatile boolean running = true;

  DecodeService(
      DecodeEngine engine, int maxBatchRows, int maxRunning, int maxQueue, ServeMetrics m) {
    this.decoder = new BatchDecoder(engine, maxBatchRows, maxRunning);
    this.capacity = maxRunning + maxQueue;
    this.admitted = new Semaphore(capacity);
    this.metrics = m;
    this.thread = new Thread(this::loop, "lora-serve-decode");
    thread.setDaemon(true);
    thread.start();
  }

  /**
   * A place for one request, taken before its adapters are leased (so a request that will be
   * refused never loads or evicts an adapter); given back when the request ends, or on {@link
   * #close} if it was never submitted.
   */
  final class Ticket implements AutoCloseable {
    private boolean held = true;

    /**
     * Queues the request on this ticket.
     *
     * @throws IllegalArgumentException from the decoder (a prompt longer than the context, ...)
     */
    CompletableFuture<Result> submit(Request request) {
      CompletableFuture<Result> f = decoder.submit(request);
      held = false;
      inFlight.incrementAndGet();
      f.whenComplete(
          (r, e) -> {
            inFlight.decrementAndGet();
            admitted.release();
          });
      LockSupport.unpark(thread);
      return f;
    }

    @Override
    public void close() {
      if (held) {
        held = false;
        admitted.release();
      }
    }
  }

  /**
   * Takes a place for a request.
   *
   * @throws ApiError 429 when {@code maxRunning + maxQueue} requests are already in
   */
  Ticket admit() {
    if (!admitted.tryAcquire()) {
      metrics.rejected();
      throw ApiError.full(
          "the server has " + capacity + " requests in flight; retry after a second");
    }
    return new Ticket();
  }

  /** Requests queued or running. */
  int inFlight() {
    return inFlight.get();
  }

  int queued() {
    return decoder.queued();
  }

  private void loop() {
    while (running) {
      if (!decoder.busy()) {
        LockSupport.parkNanos(this, TimeUnit.MILLISECONDS.toNanos(50));
        continue;
      }
      try {
        long t0 = System.nanoTime();
        decoder.step();
        metrics.step(decoder.lastDecodeRows() + decoder.lastPrefillRows(), System.nanoTime() - t0);
      } catch (RuntimeException e) { // the step's requests already failed with it
        LOG.warn("decode step failed: {}", e.toString());
      }
    }
  }

  /** Waits up to {@code millis} for the requests in flight to finish (SIGTERM's drain). */
  boolean drain(long millis) {
    long end = System.currentTimeMillis() + millis;
    while (inFlight.get() > 0 && System.currentTimeMillis() < end) {
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
    }
    return inFlight.get() == 0;
  }

  @Override
  public void close() {
    running = false;
    LockSupport.unpark(thread);
  }
}
