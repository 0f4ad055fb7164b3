"""ID-card readers: GA 467 SAM modules on serial ports, PC/SC readers, the social security card."""
