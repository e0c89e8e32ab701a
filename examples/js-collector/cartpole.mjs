// A cart with a pole on a hinge (Barto, Sutton and Anderson 1983, as gymnasium's
// CartPole-v1): push left (0) or right (1); reward 1 per step; the episode ends when
// the pole leans past 12 degrees or the cart leaves the track, and is cut at 500 steps.

const GRAVITY = 9.8, CART_MASS = 1.0, POLE_MASS = 0.1, HALF_POLE = 0.5, FORCE = 10.0;
const TAU = 0.02, THETA_LIMIT = (12 * 2 * Math.PI) / 360, X_LIMIT = 2.4;
export const MAX_STEPS = 500;

export class CartPole {
  constructor(random = Math.random) {
    this.random = random;
    this.reset();
  }

  reset() {
    this.state = Array.from({ length: 4 }, () => this.random() * 0.1 - 0.05);
    this.steps = 0;
    return Float32Array.from(this.state);
  }

  /** One step: {obs, reward, terminated, truncated}. */
  step(action) {
    const [x, xDot, theta, thetaDot] = this.state;
    const force = action === 1 ? FORCE : -FORCE;
    const cos = Math.cos(theta), sin = Math.sin(theta);
    const totalMass = CART_MASS + POLE_MASS, poleMoment = POLE_MASS * HALF_POLE;
    const temp = (force + poleMoment * thetaDot ** 2 * sin) / totalMass;
    const thetaAcc = (GRAVITY * sin - cos * temp) /
      (HALF_POLE * (4 / 3 - (POLE_MASS * cos ** 2) / totalMass));
    const xAcc = temp - (poleMoment * thetaAcc * cos) / totalMass;
    this.state = [x + TAU * xDot, xDot + TAU * xAcc, theta + TAU * thetaDot,
                  thetaDot + TAU * thetaAcc];
    this.steps += 1;
    const terminated = Math.abs(this.state[0]) > X_LIMIT || Math.abs(this.state[2]) > THETA_LIMIT;
    return { obs: Float32Array.from(this.state), reward: 1.0, terminated,
             truncated: !terminated && this.steps >= MAX_STEPS };
  }
}
