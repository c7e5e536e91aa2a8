import './kafkajs-patches.js';
import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';
import type { MembershipPolicy } from '../event-log.js';

export const FARAD_ASSIGNER = 'farad-copartitioned';

/**
 * kafkajs assigner for farad's group: the membership policy decides (replication's balanced,
 * sticky, warm-first placement); this only carries each member's report in the metadata's
 * userData and gives partition p of every input topic to the same member (co-partitioning).
 */
export function faradAssigner(membership: MembershipPolicy): PartitionAssigner {
  return () => ({
    name: FARAD_ASSIGNER,
    version: 1,
    protocol({ topics }) {
      return {
        name: FARAD_ASSIGNER,
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: membership.report() }),
      };
    },
    async assign({ members, topics }) {
      const plan = membership.assign(
        members.map(({ memberId, memberMetadata }) => ({
          memberId,
          report: AssignerProtocol.MemberMetadata.decode(memberMetadata)?.userData ?? Buffer.alloc(0),
        })),
      );
      return members.map(({ memberId }) => {
        const owned = plan.get(memberId) ?? [];
        const assignment = Object.fromEntries(topics.map((topic) => [topic, owned]));
        return {
          memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment, userData: Buffer.alloc(0) }),
        };
      });
    },
  });
}

/** Assigns this (only) member exactly the partitions it asks for: private changelog readers. */
export function selfAssigner(want: () => Record<string, number[]>): PartitionAssigner {
  return () => ({
    name: 'farad-self',
    version: 1,
    protocol({ topics }) {
      return { name: 'farad-self', metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }) };
    },
    async assign({ members }) {
      return members.map(({ memberId }, i) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: i === 0 ? want() : {}, userData: Buffer.alloc(0) }),
      }));
    },
  });
}
