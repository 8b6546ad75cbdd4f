package dev.hanlin.train.precision;

/** The CPU: copies are synchronous, so there is nothing to order or wait for. */
final class HostLane implements OffloadPipeline.Lane {
  @Override
  public void followCompute() {}

  @Override
  public void useSide() {}

  @Override
  public void onSide(Runnable r) {
    r.run();
  }

  @Override
  public Object mark() {
    return null;
  }

  @Override
  public void hostWait(Object mark) {}

  @Override
  public void streamWait(Object mark) {}

  @Override
  public void release(Object mark) {}
}
