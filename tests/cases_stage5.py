"""Crafted stage 5 submissions (see crafted.py). Each student makes mistakes in cells that are
graded apart from one another, so one grading run tests several properties."""
from crafted import Case

STAGE5 = "05_training_and_diagnostics"

RIGHT_CROSS_ENTROPY = '''
def cross_entropy_backward(logits, Y):
    n = logits.shape[0]
    dlogits = F.softmax(logits, 1)
    dlogits[range(n), Y] -= 1
    return dlogits / n
'''

# the lecture's one-line batchnorm backward, but with the biased variance (1/n) of the forward pass
BIASED_BATCHNORM = RIGHT_CROSS_ENTROPY + '''
def batchnorm_backward(dhpreact, bngain, bnraw, bnvar_inv):
    n = dhpreact.shape[0]
    dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
    dbnbias = dhpreact.sum(0, keepdim=True)
    return bngain*bnvar_inv/n * (n*dhpreact - dbnbias - bnraw*dbngain), dbngain, dbnbias
'''

SATURATION_WITHOUT_ABS = '''
def saturation(t):
    return (t > 0.97).float().mean().item() * 100
'''

STEP_WITH_AUTOGRAD = '''
def train_step(parameters, Xb, Yb, lr):
    with torch.enable_grad():
        for p in parameters:
            p.requires_grad_(True)
            p.grad = None
        loss, cache = forward(parameters, Xb, Yb)
        loss.backward()
    for p in parameters:
        p -= lr * p.grad
    return loss.detach()
'''

BACKWARD_FROM_GRAD = '''
def backward(parameters, cache, Xb, Yb):
    return [p.grad.clone() for p in parameters]
'''

# right for the notebook's batches of 32 only
BACKWARD_FOR_32_ROWS = '''
def backward(parameters, cache, Xb, Yb):
    C, W1, b1, W2, b2, bngain, bnbias = parameters
    dlogits = cross_entropy_backward(cache.logits, Yb)
    dh = dlogits @ W2.T
    dW2 = cache.h.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - cache.h**2) * dh
    dhprebn, dbngain, dbnbias = batchnorm_backward(dhpreact, bngain, cache.bnraw, cache.bnvar_inv)
    dembcat = dhprebn @ W1.T
    dW1 = cache.embcat.T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.view(32, 3, 10)
    dC = torch.zeros_like(C)
    for k in range(32):
        for j in range(3):
            dC[Xb[k, j]] += demb[k, j]
    return [dC, dW1, db1, dW2, db2, dbngain, dbnbias]
'''

RATIO_WITHOUT_LR = '''
def update_to_data(p, dp, lr):
    return (dp.std() / p.std()).item()
'''

GAIN_ON_EVERY_LAYER = '''
def make_layers(gain, batchnorm, g):
    layers = [Linear(30, 100, g, bias=not batchnorm)]
    for i in range(5):
        if batchnorm:
            layers.append(BatchNorm1d(100))
        layers.append(Tanh())
        layers.append(Linear(100, 100 if i < 4 else 27, g, bias=not batchnorm))
    if batchnorm:
        layers.append(BatchNorm1d(27))
    with torch.no_grad():
        if batchnorm:
            layers[-1].gamma *= 0.1
        else:
            layers[-1].weight *= 0.1
        for layer in layers:
            if isinstance(layer, Linear):
                layer.weight *= gain
    return layers
'''

CASES = [
    Case("s5_wrong_formulas", STAGE5,
         {"answer_pieces": BIASED_BATCHNORM, "answer_saturation": SATURATION_WITHOUT_ABS},
         {"check_pieces", "check_saturation"},
         "a wrong batchnorm_backward costs check_pieces only (backward and training are graded "
         "with the reference pieces); a saturation without abs() costs check_saturation only"),
    Case("s5_uses_autograd", STAGE5,
         {"answer_backward": BACKWARD_FROM_GRAD, "answer_train_step": STEP_WITH_AUTOGRAD},
         {"check_backward", "check_backward_any_batch", "check_train"},
         "gradients read from .grad earn no backward credit, and a training step that calls "
         "loss.backward() earns no training credit, although both work interactively"),
    Case("s5_narrow", STAGE5,
         {"answer_backward": BACKWARD_FOR_32_ROWS, "answer_update_to_data": RATIO_WITHOUT_LR,
          "answer_make_layers": GAIN_ON_EVERY_LAYER},
         {"check_backward_any_batch", "check_update_to_data", "check_make_layers"},
         "a backward that assumes 32 rows fails only on the batch of 50 (the lecture's double "
         "loop is slow but right); the grad:data ratio is not the update:data ratio; the gain "
         "does not apply to the output layer"),
]
