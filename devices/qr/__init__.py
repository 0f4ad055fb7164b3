"""QR scanners: camera frames (zxing-cpp or pyzbar), serial line scanners, HID keyboard wedges."""
