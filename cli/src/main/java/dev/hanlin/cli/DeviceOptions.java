package dev.hanlin.cli;

import dev.hanlin.torch.Device;
import picocli.CommandLine.Option;

/** {@code --device}, for the modes that run a model outside a training config. */
final class DeviceOptions {
  @Option(
      names = "--device",
      defaultValue = "auto",
      description = "cpu, cuda, cuda:N or auto (default).")
  String device;

  Device device() {
    return Device.parse(device);
  }
}
