"""The pure core: rules and values with no devices, sockets, Kivy or OpenCV."""
