# The PyTorch twin of src/models/simple-cnn.ts: same layers, same parameter names.
import torch.nn as nn

def conv_bn_act(in_c, out_c, kernel, stride=1, groups=1):
    return nn.Sequential(
        nn.Conv2d(in_c, out_c, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_c), nn.SiLU())

class SimpleCNN(nn.Module):
    def __init__(self, num_classes, width=32, dropout=0.2):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            conv_bn_act(3, w, 3, 2), conv_bn_act(w, w, 3, 1, w), conv_bn_act(w, 2 * w, 1),
            conv_bn_act(2 * w, 2 * w, 3, 2, 2 * w), conv_bn_act(2 * w, 4 * w, 1))
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * w, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))
