"""Building blocks shared by several methods (RRDB, SFT, VGG features, discriminators, GAN losses)."""
