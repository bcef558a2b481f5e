package io.loraspark.train.model.precision;

import static org.bytedeco.dnnl.global.dnnl.*;

import org.bytedeco.dnnl.dnnl_exec_arg_t;
import org.bytedeco.dnnl.dnnl_memory;
import org.bytedeco.dnnl.dnnl_primitive;
import org.bytedeco.dnnl.dnnl_stream;
import org.bytedeco.javacpp.BytePointer;

/**
 * What a calling thread needs to run its oneDNN primitives (each made and run on one thread): its
 * own stream and argument lists, and its bf16 copies of activations (grown as needed, reused by
 * every call on the thread, since one call's copies are dead once it returns).
 */
final class OneDnnThread {
  private static final ThreadLocal<OneDnnThread> MINE = ThreadLocal.withInitial(OneDnnThread::new);

  private final dnnl_stream stream = OneDnn.newStream();
  private final dnnl_exec_arg_t two = new dnnl_exec_arg_t(2);
  private final dnnl_exec_arg_t three = new dnnl_exec_arg_t(3);
  private final BytePointer[] copies = {new BytePointer(0L), new BytePointer(0L)};

  private OneDnnThread() {}

  /** The calling thread's. */
  static OneDnnThread get() {
    return MINE.get();
  }

  /** Copy buffer {@code i} (0 or 1) with room for at least {@code bytes}. */
  BytePointer copy(int i, long bytes) {
    if (copies[i].capacity() < bytes) {
      copies[i].close();
      copies[i] = new BytePointer(bytes);
    }
    return copies[i];
  }

  /** The bytes of this thread's copies. */
  long copyBytes() {
    return copies[0].capacity() + copies[1].capacity();
  }

  /** Runs a reorder (a conversion or a layout change) from {@code from} into {@code to}. */
  void reorder(dnnl_primitive reorder, dnnl_memory from, dnnl_memory to) {
    two.position(0).arg(DNNL_ARG_FROM).memory(from);
    two.position(1).arg(DNNL_ARG_TO).memory(to);
    OneDnn.check(dnnl_primitive_execute(reorder, stream, 2, two.position(0)), "reorder execute");
  }

  /** Runs a matmul, then waits for everything this thread queued. */
  void matmul(dnnl_primitive matmul, dnnl_memory src, dnnl_memory weights, dnnl_memory dst) {
    three.position(0).arg(DNNL_ARG_SRC).memory(src);
    three.position(1).arg(DNNL_ARG_WEIGHTS).memory(weights);
    three.position(2).arg(DNNL_ARG_DST).memory(dst);
    OneDnn.check(dnnl_primitive_execute(matmul, stream, 3, three.position(0)), "matmul execute");
    waitAll();
  }

  /** Waits for everything this thread queued. */
  void waitAll() {
    OneDnn.check(dnnl_stream_wait(stream), "dnnl_stream_wait");
  }
}
